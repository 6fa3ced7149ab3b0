"""Account holders, their sessions, one-time tokens, recovery codes and sign-in attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

ACCT = Declaration(SYSTEM, Purpose.ACCOUNT, Basis.CONTRACT, Retention.ACCOUNT_LIFETIME)
SESS = Declaration(SYSTEM, Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.SESSION)
TOKEN = Declaration(SYSTEM, Purpose.ACCOUNT, Basis.CONTRACT, Retention.SHORT_LIVED_TOKEN)
SEC = Declaration(SYSTEM, Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.SECURITY_LOG)


class User(Base):
    """An account holder. Personal fields are encrypted under the user's subject key."""

    __tablename__ = "users"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = column(BigId, primary_key=True, data=ACCT)
    email_index: Mapped[bytes] = column(
        LargeBinary(32), unique=True, data=ACCT.of("user.contact.email.blind_index")
    )
    email_enc: Mapped[bytes] = column(
        LargeBinary, data=ACCT.of("user.contact.email", encrypted=True)
    )
    name_enc: Mapped[bytes] = column(LargeBinary, data=ACCT.of("user.name", encrypted=True))
    phone_enc: Mapped[bytes] = column(
        LargeBinary, data=ACCT.of("user.contact.phone", encrypted=True)
    )
    billing_address_enc: Mapped[bytes | None] = column(
        LargeBinary,
        nullable=True,
        data=Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.ACCOUNT_LIFETIME).of(
            "user.contact.address", encrypted=True
        ),
    )
    password_hash: Mapped[str] = column(String(200), data=ACCT.of("user.authentication.credential"))
    email_verified_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=ACCT)
    totp_secret_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=ACCT.of("user.authentication.credential", encrypted=True)
    )
    totp_enabled_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=ACCT)
    # The last 30-second time step whose code was accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = column(BigInteger, nullable=True, data=ACCT)
    is_operator: Mapped[bool] = column(default=False, data=ACCT)
    created_at: Mapped[datetime] = column(UTCDateTime, data=ACCT)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=ACCT)


class UserSession(Base):
    """A server-side sign-in session. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = column(BigId, primary_key=True, data=SESS)
    token_hash: Mapped[bytes] = column(
        LargeBinary(32), unique=True, data=SESS.of("user.authentication.session")
    )
    user_id: Mapped[int] = column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True, data=SESS
    )
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="SET NULL"), nullable=True, data=SESS
    )
    csrf_token: Mapped[str] = column(String(64), data=SESS.of("user.authentication.session"))
    # Password accepted, second factor still due: the session grants nothing else yet.
    mfa_pending: Mapped[bool] = column(default=False, data=SESS)
    created_at: Mapped[datetime] = column(UTCDateTime, data=SESS)
    last_seen_at: Mapped[datetime] = column(UTCDateTime, data=SESS)
    expires_at: Mapped[datetime] = column(UTCDateTime, data=SESS)
    revoked_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=SESS)
    ip_truncated: Mapped[str | None] = column(
        String(64), nullable=True, data=SESS.of("user.device.ip")
    )
    user_agent: Mapped[str | None] = column(
        String(300), nullable=True, data=SESS.of("user.device.browser")
    )


class ActionToken(Base):
    """One-time links: e-mail verification and password reset. Only the hash is stored."""

    __tablename__ = "action_tokens"

    id: Mapped[int] = column(BigId, primary_key=True, data=TOKEN)
    user_id: Mapped[int] = column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True, data=TOKEN
    )
    purpose: Mapped[str] = column(String(32), data=TOKEN)
    token_hash: Mapped[bytes] = column(
        LargeBinary(32), unique=True, data=TOKEN.of("user.authentication.token")
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=TOKEN)
    expires_at: Mapped[datetime] = column(UTCDateTime, data=TOKEN)
    used_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=TOKEN)


class RecoveryCode(Base):
    """Two-factor recovery codes, hashed, each usable once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = column(BigId, primary_key=True, data=ACCT)
    user_id: Mapped[int] = column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True, data=ACCT
    )
    code_hash: Mapped[bytes] = column(
        LargeBinary(32), data=ACCT.of("user.authentication.credential")
    )
    used_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=ACCT)


class LoginAttempt(Base):
    """Failed and successful sign-ins, keyed by hashes of the account and of the client IP,
    for brute-force limits that hold across processes."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = column(BigId, primary_key=True, data=SEC)
    key_kind: Mapped[str] = column(String(10), data=SEC)  # "account" | "ip"
    key_hash: Mapped[bytes] = column(
        LargeBinary(32), index=True, data=SEC.of("user.device.ip.pseudonymous")
    )
    succeeded: Mapped[bool] = column(data=SEC)
    created_at: Mapped[datetime] = column(UTCDateTime, index=True, data=SEC)
    detail: Mapped[str | None] = column(Text, nullable=True, data=SEC)
