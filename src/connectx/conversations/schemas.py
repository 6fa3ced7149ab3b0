"""JSON shapes of conversations and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class ContactRef(BaseModel):
    id: int
    name: str | None
    phone: str | None


class ConversationOut(BaseModel):
    id: int
    status: str
    channel_id: int
    contact: ContactRef
    opened_at: datetime
    last_message_at: datetime
    last_inbound_at: datetime | None
    window_expires_at: datetime | None
    window_open: bool
    resolved_at: datetime | None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MediaOut(BaseModel):
    id: str | None
    mime_type: str | None
    sha256: str | None
    state: str | None = None  # inbound media: pending | stored | rejected | failed


class ErrorOut(BaseModel):
    code: int | None
    title: str | None


class MessageOut(BaseModel):
    id: int
    wamid: str
    conversation_id: int
    contact_id: int
    direction: str
    type: str
    status: str
    body: str | None
    content: dict[str, Any]
    media: MediaOut | None
    reply_to_wamid: str | None
    forwarded: bool
    frequently_forwarded: bool
    target_wamid: str | None
    reaction: str | None
    error: ErrorOut | None
    sent_at: datetime
    status_at: datetime | None
    edited_at: datetime | None
    revoked_at: datetime | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class ConversationUpdate(BaseModel):
    status: Literal["open", "pending", "resolved"]
