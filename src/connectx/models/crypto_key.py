"""Key hierarchy: master (outside the database) wraps scope keys, which wrap subject keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import Basis, Declaration, Purpose, Retention, column

K = Declaration(
    "system.key_material", Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.KEY_MATERIAL
)


class CryptoKey(Base):
    """``kind`` is ``scope`` (a workspace's or the platform's key, wrapped by the master key),
    ``subject`` (one per contact or user, wrapped by its scope key) or ``index`` (blind-index key,
    wrapped by the master key). A destroyed subject key keeps its row with ``wrapped`` emptied."""

    __tablename__ = "crypto_keys"
    __table_args__ = (UniqueConstraint("kind", "scope", "subject", "version"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=K)
    kind: Mapped[str] = column(String(16), data=K)
    scope: Mapped[str] = column(String(40), data=K)
    subject: Mapped[str] = column(String(60), default="", data=K)
    version: Mapped[int] = column(Integer, default=1, data=K)
    parent_id: Mapped[int | None] = column(BigInteger, nullable=True, data=K)
    master_id: Mapped[str | None] = column(String(16), nullable=True, data=K)
    wrapped: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=K)
    active: Mapped[bool] = column(default=True, data=K)
    created_at: Mapped[datetime] = column(UTCDateTime, data=K)
    destroyed_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=K)
