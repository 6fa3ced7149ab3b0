"""API shapes of security signals."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SignInOut(BaseModel):
    at: datetime
    succeeded: bool
    device: str
    network: str | None
    country: str | None
    new_device: bool
    new_country: bool


class DeviceOut(BaseModel):
    label: str
    first_seen: datetime
    last_seen: datetime
    sign_ins: int
    countries: list[str]
    current: bool


class NoticeOut(BaseModel):
    id: int
    kind: str
    subject: str
    count: int
    window_minutes: int
    created_at: datetime
    resolved_at: datetime | None


class Resolved(BaseModel):
    resolved: int
