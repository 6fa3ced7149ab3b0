"""JSON shapes of the inbox API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from connectx.conversations.schemas import ContactRef


class InboxConversationOut(BaseModel):
    id: int
    status: str
    channel_id: int
    contact: ContactRef
    assignee_user_id: int | None
    team_id: int | None
    assigned_at: datetime | None
    snoozed_until: datetime | None
    labels: list[int]
    unread: bool
    opened_at: datetime
    last_message_at: datetime
    last_inbound_at: datetime | None
    window_open: bool
    window_expires_at: datetime | None
    resolved_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxConversationOut]
    next_cursor: str | None


class UnreadCounts(BaseModel):
    mine: int
    unassigned: int
    all: int
    notifications: int


class AssignIn(BaseModel):
    user_id: int | None = Field(None, description="The member to assign; null: nobody.")
    team_id: int | None = Field(None, description="The team; null: none.")
    me: bool = Field(False, description="Assign to the signed-in member (ignores user_id).")


class SnoozeIn(BaseModel):
    until: datetime = Field(description="When it comes back as open (with a time zone).")


class LabelRefIn(BaseModel):
    label_id: int


class LabelIn(BaseModel):
    name: str = Field(max_length=200)
    color: str | None = Field(None, max_length=20, description="#rrggbb")


class LabelPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    color: str | None = Field(None, max_length=20)


class LabelOut(BaseModel):
    id: int
    name: str
    color: str


class ConversationLabelsOut(BaseModel):
    conversation_id: int
    labels: list[int]


class TeamIn(BaseModel):
    name: str = Field(max_length=200)


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[int]


class RoutingIn(BaseModel):
    mode: Literal["manual", "round_robin"]
    team_id: int | None = Field(None, description="Round-robin among this team's members.")


class RoutingOut(BaseModel):
    channel_id: int
    mode: str
    team_id: int | None
    last_user_id: int | None


class NoteIn(BaseModel):
    body: str = Field(max_length=20000)


class NoteOut(BaseModel):
    id: int
    conversation_id: int
    author_user_id: int | None
    body: str | None
    created_at: datetime


class CannedIn(BaseModel):
    shortcut: str = Field(max_length=64)
    title: str = Field(max_length=400)
    body: str = Field(max_length=20000)


class CannedPatch(BaseModel):
    shortcut: str | None = Field(None, max_length=64)
    title: str | None = Field(None, max_length=400)
    body: str | None = Field(None, max_length=20000)


class CannedOut(BaseModel):
    id: int
    shortcut: str
    title: str
    body: str
    updated_at: datetime


class NotificationOut(BaseModel):
    id: int
    kind: str
    conversation_id: int | None
    actor: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    unread: int


class PreferencesIn(BaseModel):
    email_on_assignment: bool


class PreferencesOut(BaseModel):
    email_on_assignment: bool


class ContactAttributesIn(BaseModel):
    attributes: dict[str, str | None] = Field(
        description="name -> value; null or empty removes the attribute; others are kept."
    )


class ConversationBrief(BaseModel):
    id: int
    status: str
    channel_id: int
    assignee_user_id: int | None
    opened_at: datetime
    last_message_at: datetime
    resolved_at: datetime | None


class ConsentOut(BaseModel):
    purpose: str
    channel: str
    granted: bool
    since: datetime | None
    source: str | None


class ContactPanelOut(BaseModel):
    id: int
    name: str | None
    phone: str | None
    username: str | None
    created_at: datetime
    last_inbound_at: datetime | None
    attributes: dict[str, str]
    conversations: list[ConversationBrief]
    consent: list[ConsentOut]
    # Small dicts from the requests hook (id, reference, kind, status, received/due times, the
    # clock in words, closed): ids and words only, no personal data.
    requests: list[dict[str, str | bool | int | datetime | None]] | None = Field(
        description="The contact's data requests; null until that feature exists."
    )
