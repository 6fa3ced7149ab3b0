"""JSON shape of contacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ContactOut(BaseModel):
    id: int
    name: str | None
    phone: str | None
    bsuid: str | None
    username: str | None
    created_at: datetime
    last_inbound_at: datetime | None
    identity_changed_at: datetime | None
    restricted: bool = False  # processing restricted at the person's request (GDPR art. 18)


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None
