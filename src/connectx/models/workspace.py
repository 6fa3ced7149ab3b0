"""A workspace is a business (the tenant); members hold roles in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

WS = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
INV = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.SHORT_LIVED_TOKEN)

ROLES = ("owner", "admin", "agent", "analyst")


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = column(BigId, primary_key=True, data=WS)
    name: Mapped[str] = column(String(200), data=WS.of("business.name"))
    address: Mapped[str | None] = column(String(500), nullable=True, data=WS.of("business.address"))
    phone: Mapped[str | None] = column(String(20), nullable=True, data=WS.of("business.phone"))
    created_at: Mapped[datetime] = column(UTCDateTime, data=WS)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=WS)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=WS)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=WS
    )
    user_id: Mapped[int] = column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True, data=WS
    )
    role: Mapped[str] = column(String(16), data=WS)
    created_at: Mapped[datetime] = column(UTCDateTime, data=WS)


class Invitation(Base):
    """An e-mailed invitation to join a workspace; the address is encrypted, the token hashed."""

    __tablename__ = "invitations"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = column(BigId, primary_key=True, data=INV)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=INV
    )
    email_index: Mapped[bytes] = column(
        LargeBinary(32), data=INV.of("user.contact.email.blind_index")
    )
    email_enc: Mapped[bytes] = column(
        LargeBinary, data=INV.of("user.contact.email", encrypted=True)
    )
    role: Mapped[str] = column(String(16), data=INV)
    token_hash: Mapped[bytes] = column(
        LargeBinary(32), unique=True, data=INV.of("user.authentication.token")
    )
    invited_by: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, data=INV
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=INV)
    expires_at: Mapped[datetime] = column(UTCDateTime, data=INV)
    accepted_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=INV)
    revoked_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=INV)
