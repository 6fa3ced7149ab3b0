"""Raw inbound webhooks, committed before Meta gets its 200, then processed in batches.

The body is sealed under a per-day platform subject (``webhook_day:<YYYY-MM-DD>``): raw bodies
hold personal data of many contacts, possibly of several workspaces, and are needed only until
they are processed and inspected; destroying a day key erases that day's raw bodies everywhere.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.expression import literal_column

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

EV = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.JOBS)

PENDING = "pending"
PROCESSED = "processed"
MALFORMED = "malformed"
FAILED = "failed"

# The rows the partial index of events still to process holds. Queries that walk it write the
# status as this literal (:func:`pending_only`), not as a bound parameter: PostgreSQL's generic
# plan of a prepared statement (asyncpg's, after five executions) can use a partial index only
# when the query's own text implies its predicate.
PENDING_ROWS = f"status = '{PENDING}'"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        # What a claim walks, oldest first: the events still to process, and only those. A
        # full (status, id) index served the claim only while the planner's statistics said few
        # rows were pending; during a burst they say most are, and PostgreSQL walked the primary
        # key past every processed row instead (130-180 ms a claim after 50,000 processed
        # events, growing with the table; docs/whatsapp-inbound.md, "The claim's index"). Rows
        # leave it when processed, so processing's update adds no entry here. (id) alone: a
        # partial (status, id) index lost to the primary key again on PostgreSQL (the status
        # column's correlation made its heap reads look random). SQLite keeps no statistics
        # (db/statistics.py), and without them its planner takes the index.
        Index(
            "ix_webhook_events_pending",
            "id",
            postgresql_where=text(PENDING_ROWS),
            sqlite_where=text(PENDING_ROWS),
        ),
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


def pending_only() -> ColumnElement[bool]:
    """``status = 'pending'`` with the value written into the SQL (:data:`PENDING_ROWS`)."""
    return WebhookEvent.status == literal_column(f"'{PENDING}'")
