"""Raw inbound webhooks, committed before Meta gets its 200, then processed in batches.

The body is sealed under a per-day platform subject (``webhook_day:<YYYY-MM-DD>``): raw bodies
hold personal data of many contacts, possibly of several workspaces, and are needed only until
they are processed and inspected; destroying a day key erases that day's raw bodies everywhere.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

EV = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.JOBS)

PENDING = "pending"
PROCESSED = "processed"
MALFORMED = "malformed"
FAILED = "failed"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_status_id", "status", "id"),
        # Which raw bodies of a day are live: the day-key probes of retention and erasure, and
        # re-sealing a day's bodies after an erasure (pages in this order).
        Index("ix_webhook_events_received_at", "received_at", "id"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=EV)
    source: Mapped[str] = column(String(16), default="whatsapp", data=EV)
    # The Meta app whose secret verified the signature.
    meta_app_id: Mapped[int | None] = column(
        BigId, ForeignKey("meta_apps.id", ondelete="SET NULL"), nullable=True, data=EV
    )
    received_at: Mapped[datetime] = column(UTCDateTime, data=EV)
    body_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=EV.of("user.content.webhook_raw", encrypted=True)
    )
    body_size: Mapped[int] = column(Integer, data=EV)
    status: Mapped[str] = column(String(16), default=PENDING, data=EV)
    attempts: Mapped[int] = column(Integer, default=0, data=EV)
    # Updates applied so far, for an event processed over several transactions.
    progress: Mapped[int] = column(Integer, default=0, data=EV)
    # What processing found: counts only, no content.
    items: Mapped[int] = column(Integer, default=0, data=EV)  # messages + statuses + other
    unrouted: Mapped[int] = column(Integer, default=0, data=EV)  # changes for unknown numbers
    ignored: Mapped[int] = column(Integer, default=0, data=EV)  # fields we do not act on
    last_error: Mapped[str | None] = column(String(200), nullable=True, data=EV)  # class only
    processed_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=EV)
    # The suspended workspace whose updates this pending event holds: it is not claimed while
    # that workspace's suspension is in force, and is processed once it is lifted.
    held_for: Mapped[int | None] = column(BigId, nullable=True, data=EV)
