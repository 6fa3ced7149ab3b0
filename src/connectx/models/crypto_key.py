"""The key store's tables. They live apart from the data (docs/privacy-encryption.md): on their
own SQLite file next to an embedded database, in the ``keystore`` schema on PostgreSQL, or in a
database of their own (``CONNECTX_KEYSTORE_URL``). Data backups never contain them, so destroying
a subject's key also erases the copies of that subject's data inside older data backups.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped

from connectx.db.base import NAMING_CONVENTION, BigId, UTCDateTime
from connectx.kit.inventory import Basis, Declaration, Purpose, Retention, column

K = Declaration(
    "system.key_material", Purpose.SECURITY, Basis.LEGITIMATE_INTERESTS, Retention.KEY_MATERIAL
)


class KeyStoreBase(DeclarativeBase):
    """Tables of the key store (not of the data database: no migration, no data backup)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CryptoKey(KeyStoreBase):
    """``kind`` is ``scope`` (a workspace's or the platform's key-encryption key, wrapped by the
    master key), ``subject`` (one data key per contact or user, wrapped by its scope key),
    ``index`` (the blind-index key) or ``audit`` (the audit chain key), both wrapped by the master
    key. A destroyed or retired key keeps its row with ``wrapped`` emptied, so ciphertexts that
    name it fail as "erased" rather than "unknown"."""

    __tablename__ = "crypto_keys"
    __table_args__ = (
        UniqueConstraint("kind", "scope", "subject", "version"),
        Index("ix_crypto_keys_parent_id", "parent_id"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=K)
    kind: Mapped[str] = column(String(16), data=K)
    scope: Mapped[str] = column(String(40), data=K)
    # "user:12", "contact:5" (an id, never personal data); "" for scope and root keys.
    subject: Mapped[str] = column(String(60), default="", data=K)
    version: Mapped[int] = column(Integer, default=1, data=K)
    parent_id: Mapped[int | None] = column(BigInteger, nullable=True, data=K)
    master_id: Mapped[str | None] = column(String(16), nullable=True, data=K)
    wrapped: Mapped[bytes | None] = column(LargeBinary, nullable=True, data=K)
    active: Mapped[bool] = column(default=True, data=K)
    created_at: Mapped[datetime] = column(UTCDateTime, data=K)
    destroyed_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=K)


A = Declaration("system.audit", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR)


class AuditCheckpoint(KeyStoreBase):
    """The head of the audit chain as last verified (``connectx audit verify``), kept outside the
    data database: someone who can rewrite the data database cannot also cut the chain's tail
    without the next verification noticing."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = column(BigId, primary_key=True, data=A)
    event_id: Mapped[int] = column(BigInteger, data=A)
    hash: Mapped[str] = column(String(64), data=A)
    entries: Mapped[int] = column(BigInteger, data=A)
    created_at: Mapped[datetime] = column(UTCDateTime, data=A)


class AuditAnchor(KeyStoreBase):
    """Where the audit chain starts after retention pruned its oldest entries: the id and hash
    of the last entry removed. Kept outside the data database, so cutting more entries off the
    start than retention did is noticed by ``connectx audit verify``."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = column(BigId, primary_key=True, data=A)
    up_to_id: Mapped[int] = column(BigInteger, data=A)
    hash: Mapped[str] = column(String(64), data=A)
    pruned: Mapped[int] = column(BigInteger, data=A)
    created_at: Mapped[datetime] = column(UTCDateTime, data=A)
