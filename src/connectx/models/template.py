"""WhatsApp message templates as Meta knows them, per WABA and workspace.

Synced from Meta (paginated) on connect, on a schedule and on demand, and kept current by the
template webhooks (status, quality, category) that intake stores as ``template_updates``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

TP = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)


class WaTemplate(Base):
    __tablename__ = "wa_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "waba_id", "name", "language"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=TP)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=TP
    )
    waba_id: Mapped[str] = column(String(64), index=True, data=TP)
    meta_id: Mapped[str | None] = column(String(64), nullable=True, data=TP)
    name: Mapped[str] = column(String(512), data=TP)
    language: Mapped[str] = column(String(16), data=TP)
    category: Mapped[str] = column(String(32), data=TP)  # MARKETING, UTILITY, AUTHENTICATION
    status: Mapped[str] = column(String(32), data=TP)  # APPROVED, PENDING, REJECTED, PAUSED, ...
    quality: Mapped[str | None] = column(String(32), nullable=True, data=TP)
    reason: Mapped[str | None] = column(String(500), nullable=True, data=TP)  # why rejected/paused
    parameter_format: Mapped[str] = column(String(16), default="POSITIONAL", data=TP)
    components: Mapped[list[Any]] = column(JSON, data=TP)  # business text, no personal data
    synced_at: Mapped[datetime] = column(UTCDateTime, data=TP)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=TP)
