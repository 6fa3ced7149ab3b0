"""Sign-in and device records, security notices to workspace owners, workspace suspensions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

USE = Declaration(SYSTEM, Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.USAGE_LOG)
NOTE = Declaration(SYSTEM, Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.SECURITY_LOG)
SUSP = Declaration(SYSTEM, Purpose.LEGAL, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)


class SignInEvent(Base):
    """A sign-in (or a failed one against an existing account) with coarse device data: the
    truncated network, browser, system, device class and country when a trusted proxy says."""

    __tablename__ = "sign_in_events"
    __table_args__ = (Index("ix_sign_in_events_user_at", "user_id", "at"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=USE)
    user_id: Mapped[int] = column(BigId, ForeignKey("users.id", ondelete="CASCADE"), data=USE)
    session_id: Mapped[int | None] = column(
        BigId, ForeignKey("user_sessions.id", ondelete="SET NULL"), nullable=True, data=USE
    )
    succeeded: Mapped[bool] = column(data=USE)
    at: Mapped[datetime] = column(UTCDateTime, index=True, data=USE)
    ip_truncated: Mapped[str | None] = column(
        String(64), nullable=True, data=USE.of("user.device.ip.truncated")
    )
    browser: Mapped[str] = column(String(40), data=USE.of("user.device.browser"))
    os: Mapped[str] = column(String(40), data=USE.of("user.device.os"))
    device_class: Mapped[str] = column(String(16), data=USE.of("user.device.class"))
    country: Mapped[str | None] = column(
        String(2), nullable=True, data=USE.of("user.location.country")
    )
    # Keyed hash of the random id in the browser's cx_device cookie.
    device_hash: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, data=USE.of("user.device.id.pseudonymous")
    )
    new_device: Mapped[bool] = column(default=False, data=USE)
    new_country: Mapped[bool] = column(default=False, data=USE)


class SecurityNotice(Base):
    """An anomaly flagged to a workspace's owners (sign-in velocity, failed sign-ins, ...)."""

    __tablename__ = "security_notices"
    __table_args__ = (Index("ix_security_notices_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=NOTE)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=NOTE
    )
    kind: Mapped[str] = column(String(32), data=NOTE)  # sign_in_velocity | failed_sign_ins | ...
    subject: Mapped[str] = column(String(60), data=NOTE)  # "user:12"
    count: Mapped[int] = column(Integer, data=NOTE)
    window_minutes: Mapped[int] = column(Integer, data=NOTE)
    created_at: Mapped[datetime] = column(UTCDateTime, data=NOTE)
    resolved_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=NOTE)
    resolved_by: Mapped[str | None] = column(String(60), nullable=True, data=NOTE)


class WorkspaceSuspension(Base):
    """The operator suspended a workspace for a terms violation (policy §3): it sends nothing
    and its inbound events wait unprocessed (still stored) until the suspension is lifted."""

    __tablename__ = "workspace_suspensions"

    id: Mapped[int] = column(BigId, primary_key=True, data=SUSP)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=SUSP
    )
    reason: Mapped[str] = column(String(500), data=SUSP)
    suspended_by: Mapped[str] = column(String(60), data=SUSP)
    suspended_at: Mapped[datetime] = column(UTCDateTime, data=SUSP)
    lifted_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=SUSP)
    lifted_by: Mapped[str | None] = column(String(60), nullable=True, data=SUSP)
