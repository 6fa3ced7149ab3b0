"""What the send API accepts (conversation replies and direct sends)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal[
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "template",
    "interactive",
    "reaction",
]


class MediaIn(BaseModel):
    id: str | None = Field(None, description="A media id already uploaded to Meta.")
    data_b64: str | None = Field(None, description="The file (base64); uploaded to Meta first.")
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None


class ButtonIn(BaseModel):
    id: str
    title: str


class RowIn(BaseModel):
    id: str
    title: str
    description: str | None = None


class SectionIn(BaseModel):
    title: str | None = None
    rows: list[RowIn]


class InteractiveIn(BaseModel):
    type: Literal["button", "list"]
    body: str
    header: str | None = None
    footer: str | None = None
    buttons: list[ButtonIn] = Field(default_factory=list)
    button: str | None = Field(None, description="The list's menu button text.")
    sections: list[SectionIn] = Field(default_factory=list)


class TemplateButtonIn(BaseModel):
    index: int
    sub_type: Literal["url", "quick_reply", "copy_code"] = "url"
    parameter: str


class TemplateIn(BaseModel):
    name: str
    language: str = "en_US"
    # Positional: a list in order ({{1}}, {{2}}...). Named: an object {"first_name": "Ana"}.
    body: list[str] | dict[str, str] = Field(default_factory=list)
    header_text: list[str] | dict[str, str] | None = None
    header_media: MediaIn | None = None
    buttons: list[TemplateButtonIn] = Field(default_factory=list)


class ReactionIn(BaseModel):
    message_id: str = Field(description="The wamid reacted to.")
    emoji: str = Field(description='"" removes the reaction.')


class SendIn(BaseModel):
    type: Kind
    text: str | None = None
    preview_url: bool = False
    reply_to: str | None = Field(None, description="The wamid of the message quoted.")
    media: MediaIn | None = None
    interactive: InteractiveIn | None = None
    template: TemplateIn | None = None
    reaction: ReactionIn | None = None


class DirectSendIn(SendIn):
    channel_id: int = Field(description="The number to send from.")
    contact_id: int | None = None
    to: str | None = Field(None, description="An E.164 phone number, when no contact_id.")


class ReadIn(BaseModel):
    message_id: int = Field(description="The inbound message (our id) to mark read.")
    typing: bool = Field(False, description="Also show the typing indicator (up to 25 s).")


class SentOut(BaseModel):
    id: int
    conversation_id: int
    wamid: str | None
    type: str
    status: str
    outbox_status: str
    attempts: int
    error: dict[str, Any] | None = None


class ChannelSendingOut(BaseModel):
    channel_id: int
    rate_per_s: int
    paused: bool
    pause_reason: str | None
    pause_code: int | None


class ChannelSendingIn(BaseModel):
    rate_per_s: int | None = Field(None, ge=1, le=1000)
    resume: bool = False
