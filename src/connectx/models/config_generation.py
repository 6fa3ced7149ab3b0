"""A generation per kind of cached configuration (migration 0008p): replaced with a new random
value by triggers on every change to the tables it covers."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

GEN = Declaration(
    SYSTEM, Purpose.OPERATIONS, Basis.LEGITIMATE_INTERESTS, Retention.WORKSPACE_LIFETIME
)

PROCESSING = "processing"  # channels, workspace_suspensions, consent_keywords


class ConfigGeneration(Base):
    __tablename__ = "config_generations"

    name: Mapped[str] = column(String(32), primary_key=True, data=GEN)
    value: Mapped[int] = column(BigInteger, data=GEN)
