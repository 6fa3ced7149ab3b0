"""Inbound media files: one row per message that carries media, tracking the download and where
the sealed file lives.

The file itself is stored outside the database (``<data dir>/media/``), sealed in AES-GCM chunks
under the contact's subject key (``contact:<id>`` in the workspace scope), so destroying that key
(erasure) makes every copy unreadable, backups included. States: ``pending`` (queued or being
retried), ``stored``, ``rejected`` (a size, type or checksum rule failed; ``reason`` says which),
``failed`` (could not be downloaded within the job's attempts, or Meta no longer has it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

MEDIA = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
# What identifies the file's content (where it lies, its checksum) goes with the message content.
FILE = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.MESSAGE_CONTENT)

PENDING = "pending"
STORED = "stored"
REJECTED = "rejected"
FAILED = "failed"


class MediaFile(Base):
    __tablename__ = "media_files"

    id: Mapped[int] = column(BigId, primary_key=True, data=MEDIA)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=MEDIA
    )
    message_id: Mapped[int] = column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), unique=True, data=MEDIA
    )
    # The subject whose key sealed the file (the message's contact when it was downloaded).
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=MEDIA
    )
    state: Mapped[str] = column(String(16), data=MEDIA)
    reason: Mapped[str | None] = column(String(200), nullable=True, data=MEDIA)
    mime_type: Mapped[str | None] = column(String(128), nullable=True, data=MEDIA)
    size: Mapped[int | None] = column(BigInteger, nullable=True, data=MEDIA)
    sha256: Mapped[str | None] = column(
        String(64), nullable=True, data=FILE.of("user.content.media.reference")
    )
    # Path of the sealed file relative to the media directory (random name, no personal data).
    storage_key: Mapped[str | None] = column(
        String(200), nullable=True, data=FILE.of("user.content.media", encrypted=True)
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=MEDIA)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=MEDIA)
    stored_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=MEDIA)
