"""Messages (inbound and outbound) and the delivery statuses Meta reports for them.

Message text, captions, structured content and the raw JSON are sealed under the contact's
subject key (``contact:<id>`` in the workspace scope). Deduplication is by database constraint:
(phone_number_id, wamid) for messages and (wamid, status) for status callbacks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

MSG = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
# What a message says is kept for the content period (workspaces may shorten it); the message's
# metadata stays for the conversation's history.
BODY = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.MESSAGE_CONTENT)
CONTENT = BODY.of("user.content.message", encrypted=True)
MEDIA_REF = BODY.of("user.content.media.reference")

# Delivery statuses only move forward; failed is terminal.
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 9}
RECEIVED = "received"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("phone_number_id", "wamid"),
        Index("ix_messages_conversation_order", "conversation_id", "sent_at", "id"),
        Index("ix_messages_target", "phone_number_id", "target_wamid"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=MSG)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=MSG
    )
    channel_id: Mapped[int] = column(BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=MSG)
    conversation_id: Mapped[int] = column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), data=MSG
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=MSG
    )
    phone_number_id: Mapped[str] = column(String(64), data=MSG)
    wamid: Mapped[str] = column(String(255), data=MSG)
    direction: Mapped[str] = column(String(3), data=MSG)  # "in" | "out"
    type: Mapped[str] = column(String(32), data=MSG)  # text, image, ..., "unsupported"
    status: Mapped[str] = column(String(16), data=MSG)  # received | sent | delivered | ...
    status_rank: Mapped[int] = column(Integer, default=0, data=MSG)
    status_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=MSG)
    error_code: Mapped[int | None] = column(Integer, nullable=True, data=MSG)
    error_title: Mapped[str | None] = column(String(200), nullable=True, data=MSG)
    # Text, caption or the title a person sees; structured content; the message as received.
    body_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=CONTENT)
    content_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=CONTENT)
    raw_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=BODY.of("user.content.message.raw", encrypted=True)
    )
    # Media references for the downloader (the file itself is fetched and sealed separately).
    media_id: Mapped[str | None] = column(String(128), nullable=True, data=MEDIA_REF)
    media_mime_type: Mapped[str | None] = column(String(128), nullable=True, data=MEDIA_REF)
    media_sha256: Mapped[str | None] = column(String(128), nullable=True, data=MEDIA_REF)
    # Context: the message this one replies to, and forwarding marks.
    reply_to_wamid: Mapped[str | None] = column(String(255), nullable=True, data=MSG)
    forwarded: Mapped[bool] = column(default=False, data=MSG)
    frequently_forwarded: Mapped[bool] = column(default=False, data=MSG)
    # Reactions, edits and revokes name the message they apply to.
    target_wamid: Mapped[str | None] = column(String(255), nullable=True, data=MSG)
    reaction_enc: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=CONTENT)
    reaction_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=MSG)
    edited_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=MSG)
    revoked_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=MSG)
    sent_at: Mapped[datetime] = column(UTCDateTime, data=MSG)  # Meta's timestamp
    created_at: Mapped[datetime] = column(UTCDateTime, data=MSG)


class MessageStatusEvent(Base):
    """Each distinct status callback, once. The message row holds the furthest status reached."""

    __tablename__ = "message_status_events"
    __table_args__ = (UniqueConstraint("wamid", "status"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=MSG)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=MSG
    )
    channel_id: Mapped[int] = column(BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=MSG)
    wamid: Mapped[str] = column(String(255), data=MSG)
    status: Mapped[str] = column(String(16), data=MSG)
    occurred_at: Mapped[datetime] = column(UTCDateTime, data=MSG)
    error_code: Mapped[int | None] = column(Integer, nullable=True, data=MSG)
    error_title: Mapped[str | None] = column(String(200), nullable=True, data=MSG)
    # Meta's pricing and (before v24) conversation objects: categories and ids, no content.
    pricing: Mapped[dict[str, Any] | None] = column(
        JSON, nullable=True, data=MSG.of("system.billing")
    )
    meta_conversation: Mapped[dict[str, Any] | None] = column(
        JSON, nullable=True, data=MSG.of("system.billing")
    )
    # The outbox row's biz_opaque_callback_data Meta echoed (null for other statuses).
    callback_data: Mapped[str | None] = column(String(64), nullable=True, index=True, data=MSG)
    created_at: Mapped[datetime] = column(UTCDateTime, data=MSG)
