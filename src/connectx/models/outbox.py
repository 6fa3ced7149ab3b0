"""The outbox: every outbound send is a durable row committed with its message.

A per-number pacer claims pending rows in batches, sends them to Meta's Graph API at the number's
rate and records the outcome on the row and on the message (docs/outbound.md). The Graph
request body is sealed under the contact's key (subject ``contact:<id>``, column
``outbox_messages.payload``) and cleared once the row reaches a final state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

OB = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
PAYLOAD = OB.of("user.content.message", encrypted=True)

# pending -> sending (claimed, lease) -> sent | failed; 190 leaves rows pending (channel paused).
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


def _where(condition: str) -> dict[str, Any]:
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


# Every claim and every outcome rewrites a row, and on PostgreSQL each rewrite (``status``
# changes, so never a HOT update) adds an entry to every index the new version belongs to:
# the queue's indexes hold only the rows still to send (pending: what a claim walks, in id
# order; sending: what the in-doubt checks walk), and NULL keys (read receipts have no message,
# keyless sends no idempotency key) are not indexed: a btree holding many equal NULL keys made
# each such entry several times dearer (docs/outbound.md, "Indexes").
OUTBOX_INDEXES = (
    Index("ix_outbox_pending", "channel_id", "id", **_where("status = 'pending'")),
    Index("ix_outbox_sending", "channel_id", "lease_until", **_where("status = 'sending'")),
    Index(
        "uq_outbox_idempotency",
        "workspace_id",
        "idempotency_key",
        unique=True,
        **_where("idempotency_key IS NOT NULL"),
    ),
    Index("ix_outbox_message", "message_id", **_where("message_id IS NOT NULL")),
)


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = OUTBOX_INDEXES

    id: Mapped[int] = column(BigId, primary_key=True, data=OB)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=OB
    )
    channel_id: Mapped[int] = column(BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=OB)
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=OB
    )
    # The stored outbound message (null for mark-as-read / typing indicators).
    message_id: Mapped[int | None] = column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, data=OB
    )
    kind: Mapped[str] = column(String(16), data=OB)  # message | read
    # Per-recipient pacing key: a keyed hash of the recipient, never the number itself.
    recipient_key: Mapped[str] = column(String(64), data=OB)
    idempotency_key: Mapped[str | None] = column(String(200), nullable=True, data=OB)
    # Echoed by Meta in status callbacks: lets a repeat be told from a first send.
    callback_data: Mapped[str] = column(String(64), unique=True, data=OB)
    payload_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=PAYLOAD)
    status: Mapped[str] = column(String(16), default="pending", data=OB)
    attempts: Mapped[int] = column(Integer, default=0, data=OB)
    next_attempt_at: Mapped[datetime] = column(UTCDateTime, data=OB)
    lease_until: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=OB)
    claim_token: Mapped[str | None] = column(String(32), nullable=True, data=OB)
    wamid: Mapped[str | None] = column(String(255), nullable=True, data=OB)
    error_code: Mapped[int | None] = column(Integer, nullable=True, data=OB)
    error_title: Mapped[str | None] = column(String(200), nullable=True, data=OB)
    created_by: Mapped[str] = column(String(60), data=OB)  # "user:3", "api_key:2"
    created_at: Mapped[datetime] = column(UTCDateTime, data=OB)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=OB)
    sent_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=OB)


class ChannelSending(Base):
    """Per-number sending state: its rate and whether sends are paused (token invalid, ...)."""

    __tablename__ = "channel_sending"

    channel_id: Mapped[int] = column(
        BigId, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, data=OB
    )
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=OB
    )
    rate_per_s: Mapped[int] = column(Integer, default=80, data=OB)
    paused_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=OB)
    pause_reason: Mapped[str | None] = column(String(64), nullable=True, data=OB)
    pause_code: Mapped[int | None] = column(Integer, nullable=True, data=OB)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=OB)
