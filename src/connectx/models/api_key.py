"""Workspace API keys: shown once, stored as a hash, scoped, revocable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

KEY = Declaration(SYSTEM, Purpose.SECURITY, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = column(BigId, primary_key=True, data=KEY)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=KEY
    )
    name: Mapped[str] = column(String(100), data=KEY)
    prefix: Mapped[str] = column(
        String(16), data=KEY
    )  # shown in lists so people can tell keys apart
    key_hash: Mapped[bytes] = column(LargeBinary(32), unique=True, data=KEY.of("system.credential"))
    scopes: Mapped[list[str]] = column(JSON, default=list, data=KEY)
    created_by: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, data=KEY
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=KEY)
    last_used_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=KEY)
    revoked_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=KEY)
