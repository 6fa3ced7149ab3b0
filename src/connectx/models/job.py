"""Durable background work: a row committed with the change that caused it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

J = Declaration(SYSTEM, Purpose.OPERATIONS, Basis.LEGITIMATE_INTERESTS, Retention.JOBS)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=J)
    name: Mapped[str] = column(String(64), data=J)  # "domain.verb"
    # Arguments are ids only (house rule 6), never personal data.
    args: Mapped[dict[str, Any]] = column(JSON, default=dict, data=J)
    status: Mapped[str] = column(
        String(16), default="pending", data=J
    )  # pending|running|done|failed
    attempts: Mapped[int] = column(Integer, default=0, data=J)
    max_attempts: Mapped[int] = column(Integer, default=8, data=J)
    run_after: Mapped[datetime] = column(UTCDateTime, data=J)
    lease_until: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=J)
    enqueued_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=J)
    last_error: Mapped[str | None] = column(Text, nullable=True, data=J)  # exception class only
    created_at: Mapped[datetime] = column(UTCDateTime, data=J)
    finished_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=J)
