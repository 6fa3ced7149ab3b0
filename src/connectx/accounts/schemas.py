"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from connectx.kit.passwords import MAX_LENGTH


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupTerms(BaseModel):
    marketing_wording: str = Field(description="The words to show next to the marketing choice.")
    notice_version: str = Field(description="The privacy notice in force (its 'Last Updated').")
    password_min_length: int
    password_max_length: int


class SignupIn(_In):
    name: str = Field(max_length=200, examples=["Ada Lovelace"])
    email: str = Field(max_length=320, examples=["ada@example.com"])
    phone: str = Field(max_length=40, examples=["+447911123456"])
    password: str = Field(max_length=MAX_LENGTH * 4, description="12 to 128 characters.")
    billing_address: str | None = Field(default=None, max_length=500)
    marketing_opt_in: bool = Field(
        default=False,
        description="Unticked unless the person ticks it; recorded in the consent ledger with "
        "the wording from GET /api/v1/auth/signup-terms.",
    )


class SignupOut(BaseModel):
    id: int
    detail: str


class TokenIn(_In):
    token: str = Field(max_length=200)


class EmailIn(_In):
    email: str = Field(max_length=320)


class Accepted(BaseModel):
    detail: str


class SigninIn(_In):
    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_LENGTH * 4)


class SigninOut(BaseModel):
    status: str = Field(description="'signed_in', or 'second_factor_due' (POST signin/2fa next).")
    csrf_token: str = Field(
        description="Send as X-CSRF-Token with every state-changing request of this session."
    )
    next: str


class CodeIn(_In):
    code: str = Field(max_length=40)


class ResetIn(_In):
    token: str = Field(max_length=200)
    password: str = Field(max_length=MAX_LENGTH * 4)


class ProfileOut(BaseModel):
    id: int
    name: str
    email: str
    phone: str
    billing_address: str | None
    email_verified: bool
    two_factor_enabled: bool
    created_at: datetime


class ProfileIn(_In):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    billing_address: str | None = Field(
        default=None, max_length=500, description="An empty string removes it."
    )


class PasswordChangeIn(_In):
    current_password: str = Field(max_length=MAX_LENGTH * 4)
    new_password: str = Field(max_length=MAX_LENGTH * 4)


class PasswordChanged(BaseModel):
    detail: str
    other_sessions_signed_out: int


class EnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 secret, for typing into an authenticator app.")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an SVG QR code.")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works once.")
    detail: str


class ProofIn(_In):
    code: str | None = Field(default=None, max_length=40)
    password: str | None = Field(default=None, max_length=MAX_LENGTH * 4)


class SessionOut(BaseModel):
    id: int
    device: str
    ip: str | None = Field(description="Truncated: IPv4 /24, IPv6 /48.")
    created_at: datetime
    last_seen_at: datetime
    current: bool
