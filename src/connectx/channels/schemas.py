"""What the channels API accepts and returns. Tokens and secrets are write-only."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

_META_ID = re.compile(r"^[0-9]{1,64}$")


def _meta_id(value: str, what: str, where: str) -> str:
    value = value.strip()
    if not _META_ID.match(value):
        raise ValueError(f"the {what} is a number of up to 64 digits; copy it from {where}")
    return value


class ChannelCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(None, max_length=100, description="A label for people, optional.")
    phone_number_id: str = Field(description="Meta's Phone number ID (not the number itself).")
    display_phone_number: str = Field(description="The business number, e.g. +15550783881.")
    waba_id: str = Field(description="The WhatsApp Business Account ID.")
    access_token: str = Field(min_length=1, max_length=4096, description="Never returned.")
    app_id: str = Field(description="The Meta app's App ID.")
    app_secret: str = Field(min_length=8, max_length=256, description="Never returned.")
    verify_token: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The webhook verify token set in the app; required the first time an app "
        "is connected. Never returned.",
    )

    @field_validator("phone_number_id")
    @classmethod
    def _pnid(cls, v: str) -> str:
        return _meta_id(v, "phone number ID", "WhatsApp Manager → API Setup")

    @field_validator("waba_id")
    @classmethod
    def _waba(cls, v: str) -> str:
        return _meta_id(v, "WhatsApp Business Account ID", "WhatsApp Manager → API Setup")

    @field_validator("app_id")
    @classmethod
    def _app(cls, v: str) -> str:
        return _meta_id(v, "App ID", "the Meta App Dashboard → App settings → Basic")


class AppOut(BaseModel):
    id: int
    app_id: str


class ChannelOut(BaseModel):
    id: int
    name: str | None
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    status: str
    app: AppOut
    webhook_url: str
    created_at: datetime
    disconnected_at: datetime | None


class ChannelList(BaseModel):
    items: list[ChannelOut]
