"""Data-subject requests (policy §8): the request, its timeline, a workspace's privacy settings
and the WhatsApp conversations that guide a customer through filing one.

A request's own personal fields (the address to answer, what the person wrote, reasons given)
are sealed under the request's own key, ``dsr:<id>``: erasing the subject does not make the
record of how their request was answered unreadable, and deleting a closed request destroys
that key (docs/privacy-requests.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

REQ = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.CLOSED_REQUESTS)
SET = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
DLG = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.SHORT_LIVED_TOKEN)


class DataRequest(Base):
    __tablename__ = "data_requests"
    __table_args__ = (
        Index("ix_data_requests_subject", "workspace_id", "subject"),
        Index("ix_data_requests_status_due", "status", "due_at"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=REQ)
    # Null: a request to ConnectX as controller (account holders, inquiries to the DPO).
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, index=True, data=REQ
    )
    reference: Mapped[str] = column(String(16), unique=True, data=REQ)  # "R-7K3M9QX2"
    kind: Mapped[str] = column(String(16), data=REQ)  # access, erasure, ..., inquiry
    subject_kind: Mapped[str] = column(String(16), data=REQ)  # account_holder | customer
    # "contact:5" / "user:12" once known (the person the request is about); a pseudonymous id.
    subject: Mapped[str | None] = column(
        String(60), nullable=True, data=REQ.of("user.unique_id.pseudonymous")
    )
    status: Mapped[str] = column(String(24), data=REQ)
    source: Mapped[str] = column(String(16), data=REQ)  # web, whatsapp, api, account, dpo_form
    filed_by: Mapped[str] = column(String(60), data=REQ)  # actor id
    notify_via: Mapped[str] = column(String(16), data=REQ)  # email | whatsapp
    email_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.contact.email", encrypted=True)
    )
    phone_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.contact.phone", encrypted=True)
    )
    name_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.name", encrypted=True)
    )
    details_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.content.request", encrypted=True)
    )
    # The right's parameters (corrected values, purpose, grounds), sealed JSON.
    params_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.content.request", encrypted=True)
    )
    received_at: Mapped[datetime] = column(UTCDateTime, data=REQ)
    due_at: Mapped[datetime] = column(UTCDateTime, data=REQ)
    extended_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    extension_days: Mapped[int | None] = column(Integer, nullable=True, data=REQ)
    extension_reason_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.content.request", encrypted=True)
    )
    verified_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    verification: Mapped[str | None] = column(String(24), nullable=True, data=REQ)
    # The one-time code: a keyed hash only, its life and the attempts left.
    code_hash: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, data=REQ.of("user.authentication.credential")
    )
    code_expires_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    code_attempts: Mapped[int] = column(Integer, default=0, data=REQ)
    codes_sent: Mapped[int] = column(Integer, default=0, data=REQ)
    code_sent_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    decided_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    decided_by: Mapped[str | None] = column(String(60), nullable=True, data=REQ)
    refusal_reason_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.content.request", encrypted=True)
    )
    # What execution did and kept (sealed JSON), and the download it produced (if any).
    result_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=REQ.of("user.content.request", encrypted=True)
    )
    artifact_id: Mapped[int | None] = column(BigInteger, nullable=True, data=REQ)
    reminded_7d_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    reminded_1d_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=REQ)
    closed_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, index=True, data=REQ)
    created_at: Mapped[datetime] = column(UTCDateTime, data=REQ)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=REQ)


class DataRequestEvent(Base):
    """One step of a request's timeline (ids and short codes only; notes stay on the request)."""

    __tablename__ = "data_request_events"

    id: Mapped[int] = column(BigId, primary_key=True, data=REQ)
    request_id: Mapped[int] = column(
        BigId, ForeignKey("data_requests.id", ondelete="CASCADE"), index=True, data=REQ
    )
    workspace_id: Mapped[int | None] = column(BigId, nullable=True, data=REQ)
    action: Mapped[str] = column(String(32), data=REQ)
    actor: Mapped[str] = column(String(60), data=REQ)
    data: Mapped[dict[str, Any]] = column(JSON, data=REQ)
    at: Mapped[datetime] = column(UTCDateTime, data=REQ)


class PrivacySettings(Base):
    """A workspace's privacy-request settings: the handle customers find it by on the privacy
    center, and the WhatsApp keywords that start a request."""

    __tablename__ = "privacy_settings"

    id: Mapped[int] = column(BigId, primary_key=True, data=SET)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True, data=SET
    )
    handle: Mapped[str] = column(String(40), unique=True, data=SET)
    # [{"text": "DELETE MY DATA", "kind": "erasure"}, {"text": "MY DATA", "kind": null}]
    keywords: Mapped[list[dict[str, Any]]] = column(JSON, data=SET)
    # An approved template (body {{1}} = the code) for codes outside the 24-hour window.
    code_template: Mapped[str | None] = column(String(512), nullable=True, data=SET)
    code_template_language: Mapped[str | None] = column(String(16), nullable=True, data=SET)
    updated_by: Mapped[str] = column(String(60), data=SET)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=SET)


class RequestDialog(Base):
    """Where a customer is in the WhatsApp conversation that files a request."""

    __tablename__ = "data_request_dialogs"
    __table_args__ = (UniqueConstraint("workspace_id", "contact_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=DLG)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=DLG
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=DLG
    )
    channel_id: Mapped[int] = column(BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=DLG)
    step: Mapped[str] = column(String(16), data=DLG)  # choose | confirm | code
    kind: Mapped[str | None] = column(String(16), nullable=True, data=DLG)
    request_id: Mapped[int | None] = column(
        BigId, ForeignKey("data_requests.id", ondelete="CASCADE"), nullable=True, data=DLG
    )
    expires_at: Mapped[datetime] = column(UTCDateTime, data=DLG)
    created_at: Mapped[datetime] = column(UTCDateTime, data=DLG)
