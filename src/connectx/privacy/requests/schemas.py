"""What the requests API accepts and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectx.privacy.requests.service import RequestView


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int = Field(description="The customer the request is about.")
    kind: str = Field(
        description="access, rectification, erasure, restriction, objection, portability, "
        "withdrawal"
    )
    details: str | None = Field(None, max_length=4000, description="What the customer said.")
    params: dict[str, Any] | None = Field(
        None,
        description="The right's parameters (docs/privacy-rights.md): corrected values for "
        "rectification, purpose/channel for withdrawal and objection.",
    )
    identity_checked: bool = Field(
        False,
        description="true: the workspace checked who asked (recorded as its attestation). "
        "false: the customer gets a code on WhatsApp and confirms by replying with it.",
    )


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=4000, description="Told to the customer, with how to complain.")


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(description="1 to 30, once, before the due date.")
    reason: str = Field(max_length=4000, description="Told to the customer.")


class EventOut(BaseModel):
    action: str
    actor: str
    at: datetime
    data: dict[str, Any]


class RequestOut(BaseModel):
    id: int
    reference: str
    kind: str
    status: str
    source: str
    subject: str | None
    received_at: datetime
    due_at: datetime
    days_left: int
    overdue: bool
    extended: bool
    verified_at: datetime | None
    verification: str | None
    closed_at: datetime | None
    artifact_id: int | None
    details: str | None = None
    result: dict[str, Any] | None = None
    refusal_reason: str | None = None
    extension_reason: str | None = None
    events: list[EventOut] = Field(default_factory=list)

    @classmethod
    def of(cls, view: RequestView) -> RequestOut:
        return cls(
            id=view.id,
            reference=view.reference,
            kind=view.kind,
            status=view.status,
            source=view.source,
            subject=view.subject,
            received_at=view.received_at,
            due_at=view.clock.due_at,
            days_left=view.clock.days_left,
            overdue=view.clock.overdue,
            extended=view.clock.extended,
            verified_at=view.verified_at,
            verification=view.verification,
            closed_at=view.closed_at,
            artifact_id=view.artifact_id,
            details=view.details,
            result=view.result,
            refusal_reason=view.refusal_reason,
            extension_reason=view.extension_reason,
            events=[
                EventOut(action=e.action, actor=e.actor, at=e.at, data=e.data) for e in view.events
            ],
        )


class KeywordIn(BaseModel):
    text: str
    kind: str | None = None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str | None = None
    keywords: list[KeywordIn] | None = None
    code_template: str | None = Field(
        None,
        max_length=512,
        description="An approved template (body {{1}} = the code) for codes outside the "
        "24-hour window; empty to remove.",
    )
    code_template_language: str | None = Field(None, max_length=16)


class SettingsOut(BaseModel):
    handle: str
    keywords: list[KeywordIn]
    code_template: str | None
    code_template_language: str | None
