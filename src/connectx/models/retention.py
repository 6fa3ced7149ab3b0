"""Retention: legal holds, workspaces' own retention periods, and the schedule of periodic work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    exists,
    or_,
)
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

HOLD = Declaration(
    "system.legal_hold", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR
)
OVR = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
RUN = Declaration(SYSTEM, Purpose.OPERATIONS, Basis.LEGITIMATE_INTERESTS, Retention.JOBS)


class LegalHold(Base):
    """While a hold is active, retention deletes and anonymises nothing of its workspace or of
    its subject ("user:12", "contact:5"). Never deleted.

    A hold names a subject, or else (``subject`` empty) holds the whole ``workspace_id``. A
    subject hold with a ``workspace_id`` belongs to that workspace (its admins placed it through
    the API, on one of its contacts) and holds only the subject. ``placed_by`` "operator": placed
    with ``connectx retention hold``; workspaces neither see nor release those."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = column(BigId, primary_key=True, data=HOLD)
    # No foreign key: a hold outlives nothing it protects, and must not vanish with it.
    workspace_id: Mapped[int | None] = column(BigId, nullable=True, index=True, data=HOLD)
    subject: Mapped[str | None] = column(String(60), nullable=True, index=True, data=HOLD)
    reason: Mapped[str] = column(String(200), data=HOLD)  # masked like audit reasons
    placed_by: Mapped[str] = column(String(60), data=HOLD)
    placed_at: Mapped[datetime] = column(UTCDateTime, data=HOLD)
    released_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=HOLD)
    released_by: Mapped[str | None] = column(String(60), nullable=True, data=HOLD)


class RetentionOverride(Base):
    """A workspace's own period for a retention class that allows it, within the bounds."""

    __tablename__ = "retention_overrides"
    __table_args__ = (UniqueConstraint("workspace_id", "retention_class"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=OVR)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=OVR
    )
    retention_class: Mapped[str] = column(String(32), data=OVR)
    days: Mapped[int] = column(Integer, data=OVR)
    set_by: Mapped[str] = column(String(60), data=OVR)
    set_at: Mapped[datetime] = column(UTCDateTime, data=OVR)


class PeriodicRun(Base):
    """When periodic work (daily retention, scheduled backups) is next due. Processes that run
    background work claim a due run by moving ``next_run_at`` forward (compare-and-set), so
    exactly one of them enqueues the job."""

    __tablename__ = "periodic_runs"

    name: Mapped[str] = column(String(64), primary_key=True, data=RUN)
    next_run_at: Mapped[datetime] = column(UTCDateTime, data=RUN)
    last_enqueued_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=RUN)
    last_job_id: Mapped[int | None] = column(BigId, nullable=True, data=RUN)


PRUNE = Declaration("system.audit", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR)


class LedgerPrune(Base):
    """A deliberate removal from an append-only table (``audit_events``, ``consent_records``),
    made by retention. The database refuses a DELETE there unless a permit here reaches the row's
    id (and names its subject, when it names one): migration 0003t. Never changed or deleted.
    For the audit log, ``last_hash`` is the hash of the last entry removed: where the chain now
    starts (kept in the key store too, ``audit_anchors``)."""

    __tablename__ = "ledger_prunes"
    __table_args__ = (Index("ix_ledger_prunes_permit", "table_name", "up_to_id", "subject"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=PRUNE)
    table_name: Mapped[str] = column(String(40), data=PRUNE)
    subject: Mapped[str | None] = column(String(60), nullable=True, data=PRUNE)  # "contact:5"
    up_to_id: Mapped[int] = column(BigInteger, data=PRUNE)
    rows: Mapped[int] = column(BigInteger, data=PRUNE)
    last_hash: Mapped[str | None] = column(String(64), nullable=True, data=PRUNE)
    actor: Mapped[str] = column(String(60), data=PRUNE)
    created_at: Mapped[datetime] = column(UTCDateTime, data=PRUNE)


def hold_covers(workspace: Any, subject: Any) -> ColumnElement[bool]:
    """An active legal hold covers a row whose workspace column is ``workspace`` and whose
    subject is ``subject`` (SQL expressions; either may be None)."""
    matches: list[ColumnElement[bool]] = []
    if workspace is not None:
        matches.append(and_(LegalHold.subject.is_(None), LegalHold.workspace_id == workspace))
    if subject is not None:
        matches.append(LegalHold.subject == subject)
    return exists().where(LegalHold.released_at.is_(None), or_(*matches))
