"""A conversation: one contact talking to one of the workspace's numbers.

At most one conversation per contact and number is not resolved (open or pending) at a time;
a partial unique index holds that across processes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

CV = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)

STATUSES = ("open", "pending", "resolved")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index(
            "uq_conversations_unresolved_contact_channel",
            "contact_id",
            "channel_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_conversations_workspace_activity", "workspace_id", "last_message_at", "id"),
        # The inbox's lists (docs/inbox.md): by status, by assignee (mine, unassigned), by number.
        Index(
            "ix_conversations_status_activity",
            "workspace_id",
            "status",
            "last_message_at",
            "id",
        ),
        Index(
            "ix_conversations_assignee_activity",
            "workspace_id",
            "assignee_user_id",
            "status",
            "last_message_at",
            "id",
        ),
        Index("ix_conversations_channel_activity", "channel_id", "last_message_at", "id"),
        Index("ix_conversations_snoozed", "snoozed_until"),
        # Unread counts: the unresolved conversations only, covering what the count reads.
        Index(
            "ix_conversations_unresolved_inbound",
            "workspace_id",
            "last_inbound_at",
            "assignee_user_id",
            "status",
            "id",
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=CV)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=CV
    )
    channel_id: Mapped[int] = column(
        BigId, ForeignKey("channels.id", ondelete="CASCADE"), index=True, data=CV
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=CV
    )
    status: Mapped[str] = column(String(16), default="open", data=CV)
    opened_at: Mapped[datetime] = column(UTCDateTime, data=CV)
    # The 24-hour customer-service window runs from the last inbound message.
    last_inbound_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CV)
    last_message_at: Mapped[datetime] = column(UTCDateTime, data=CV)
    resolved_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CV)
    # The inbox (docs/inbox.md): who answers it, for which team; pending until a time.
    assignee_user_id: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, data=CV
    )
    team_id: Mapped[int | None] = column(
        BigId, ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, data=CV
    )
    assigned_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CV)
    snoozed_until: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CV)
    created_at: Mapped[datetime] = column(UTCDateTime, data=CV)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=CV)
