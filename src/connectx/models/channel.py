"""WhatsApp channels: a connected business number, and the Meta app that signs its webhooks.

A Meta app is a platform-level row (one app may serve numbers of several workspaces); its secret
and verify token are sealed under the platform scope (subject ``meta_app:<id>``) so intake can
verify a webhook before it knows which workspace it is for. A channel belongs to one workspace;
its access token is sealed under that workspace (subject ``channel:<id>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

CH = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
SECRET = CH.of("system.credential", encrypted=True)


class MetaApp(Base):
    __tablename__ = "meta_apps"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = column(BigId, primary_key=True, data=CH)
    app_id: Mapped[str] = column(String(64), unique=True, data=CH)  # Meta's app id
    secret_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=SECRET)
    verify_token_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=SECRET)
    # Keyed hash of the verify token: the handshake finds the app without decrypting every row.
    verify_token_index: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, index=True, data=CH.of("system.credential.blind_index")
    )
    # The workspace that registered the app first (provenance; not an exclusive owner).
    registered_by_workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="SET NULL"), nullable=True, data=CH
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=CH)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=CH)
    # Set when the last channel using the app was disconnected and its secrets were destroyed.
    retired_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CH)


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        # One live connection per Meta phone number id; disconnected rows stay for history.
        Index(
            "uq_channels_live_phone_number_id",
            "phone_number_id",
            unique=True,
            sqlite_where=text("disconnected_at IS NULL"),
            postgresql_where=text("disconnected_at IS NULL"),
        ),
        NO_ID_REUSE,
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=CH)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=CH
    )
    meta_app_id: Mapped[int] = column(
        BigId, ForeignKey("meta_apps.id", ondelete="RESTRICT"), index=True, data=CH
    )
    name: Mapped[str | None] = column(String(100), nullable=True, data=CH)
    phone_number_id: Mapped[str] = column(String(64), data=CH)
    # The business's own number as Meta displays it (business data, not a person's).
    display_phone_number: Mapped[str] = column(String(32), data=CH.of("business.phone"))
    waba_id: Mapped[str] = column(String(64), index=True, data=CH)
    access_token_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=SECRET)
    status: Mapped[str] = column(String(16), default="active", data=CH)  # active|disconnected
    created_by: Mapped[str] = column(String(60), data=CH)  # actor id: "user:3", "api_key:2"
    created_at: Mapped[datetime] = column(UTCDateTime, data=CH)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=CH)
    disconnected_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CH)


class TemplateUpdate(Base):
    """Template status, quality and category changes Meta reports for a WABA."""

    __tablename__ = "template_updates"

    id: Mapped[int] = column(BigId, primary_key=True, data=CH)
    # The workspace whose channel uses this WABA (null when no connected number uses it).
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, index=True, data=CH
    )
    waba_id: Mapped[str] = column(String(64), index=True, data=CH)
    field: Mapped[str] = column(String(64), data=CH)  # message_template_status_update, ...
    template_id: Mapped[str | None] = column(String(64), nullable=True, data=CH)
    template_name: Mapped[str | None] = column(String(512), nullable=True, data=CH)
    language: Mapped[str | None] = column(String(16), nullable=True, data=CH)
    event: Mapped[str | None] = column(String(64), nullable=True, data=CH)  # APPROVED, ...
    reason: Mapped[str | None] = column(String(500), nullable=True, data=CH)
    new_quality: Mapped[str | None] = column(String(32), nullable=True, data=CH)
    new_category: Mapped[str | None] = column(String(32), nullable=True, data=CH)
    value: Mapped[dict[str, Any]] = column(JSON, data=CH)  # what Meta sent (template metadata)
    # Hash of (waba, field, value): a redelivered update is recorded once.
    dedup_key: Mapped[str] = column(String(64), unique=True, data=CH)
    created_at: Mapped[datetime] = column(UTCDateTime, data=CH)
