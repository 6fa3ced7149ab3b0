"""How far a sweep over an append-only table has looked (migration 0010s): the last id it
went through, so a sweep that runs again (in any process, after any restart) goes on from there."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

CURSOR = Declaration(
    SYSTEM, Purpose.OPERATIONS, Basis.LEGITIMATE_INTERESTS, Retention.WORKSPACE_LIFETIME
)

STATUS_SWEEP = "message_status_events"  # messages/status_sweep.py


class SweepCursor(Base):
    __tablename__ = "sweep_cursors"

    name: Mapped[str] = column(String(64), primary_key=True, data=CURSOR)
    position: Mapped[int] = column(BigInteger, data=CURSOR)
