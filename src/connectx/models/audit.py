"""The audit log: hash-chained, pseudonymous ids only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import Basis, Declaration, Purpose, Retention, column

A = Declaration("system.audit", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = column(BigId, primary_key=True, data=A)
    workspace_id: Mapped[int | None] = column(BigId, nullable=True, index=True, data=A)
    actor: Mapped[str] = column(String(60), data=A)  # "user:12", "api_key:3", "system", "operator"
    action: Mapped[str] = column(String(64), data=A)  # "account.created", "member.removed", ...
    subject: Mapped[str | None] = column(String(60), nullable=True, data=A)  # "user:12"
    ip_truncated: Mapped[str | None] = column(
        String(64), nullable=True, data=A.of("user.device.ip.truncated")
    )
    reason: Mapped[str | None] = column(String(200), nullable=True, data=A)
    # Ids and counts only; never personal data.
    data: Mapped[dict[str, Any]] = column(JSON, default=dict, data=A)
    created_at: Mapped[datetime] = column(UTCDateTime, data=A)
    prev_hash: Mapped[str] = column(String(64), data=A)
    hash: Mapped[str] = column(String(64), unique=True, data=A)
