"""The consent ledger: append-only; the current state is derived from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

C = Declaration("user.consent", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.CONSENT_PROOF)


class ConsentRecord(Base):
    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_subject", "subject", "purpose", "channel"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=C)
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, data=C
    )
    subject: Mapped[str] = column(String(60), data=C)  # "user:12", "contact:5"
    purpose: Mapped[str] = column(String(32), data=C)  # marketing, product_updates, analytics, ...
    channel: Mapped[str] = column(String(16), data=C)  # email, whatsapp
    granted: Mapped[bool] = column(data=C)
    source: Mapped[str] = column(
        String(32), data=C
    )  # signup_form, whatsapp_keyword, api, agent, ...
    wording: Mapped[str] = column(Text, data=C)  # the words shown to the person (not personal data)
    wording_hash: Mapped[str] = column(String(64), data=C)
    notice_version: Mapped[str] = column(String(32), data=C)
    actor: Mapped[str] = column(String(60), data=C)  # "user:12", "api_key:3", "system"
    created_at: Mapped[datetime] = column(UTCDateTime, data=C)


KW = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.WORKSPACE_LIFETIME)


class ConsentKeywords(Base):
    """A workspace's WhatsApp opt-out / opt-in keywords and confirmations for one language
    (docs/consent.md). No row for a workspace: the defaults (STOP / START, English) apply."""

    __tablename__ = "consent_keywords"
    __table_args__ = (
        UniqueConstraint("workspace_id", "language", name="uq_consent_keywords_language"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=KW)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=KW
    )
    language: Mapped[str] = column(String(16), data=KW)  # "en", "ar", "pt_BR"
    stop_words: Mapped[list[str]] = column(JSON, data=KW)  # business wording, not personal data
    start_words: Mapped[list[str]] = column(JSON, data=KW)
    stop_reply: Mapped[str] = column(Text, data=KW)
    start_reply: Mapped[str] = column(Text, data=KW)
    updated_by: Mapped[str] = column(String(60), data=KW)  # "user:12", "api_key:3"
    updated_at: Mapped[datetime] = column(UTCDateTime, data=KW)


SUP = Declaration(
    "user.contact.suppression_hash", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.CONSENT_PROOF
)


class ConsentSuppression(Base):
    """The suppression list: a keyed hash of an address that withdrew marketing consent, so the
    opt-out outlives the contact (erased, then re-created by a new message or the API). Holds no
    address: the hash is an HMAC under the vault's index key, per workspace and channel."""

    __tablename__ = "consent_suppressions"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id",
            "channel",
            "purpose",
            "address_hash",
            name="uq_consent_suppressions_hash",
        ),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=SUP)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=SUP
    )
    channel: Mapped[str] = column(String(16), data=SUP)
    purpose: Mapped[str] = column(String(32), data=SUP)
    address_hash: Mapped[bytes] = column(LargeBinary(32), data=SUP)
    record_id: Mapped[int] = column(BigId, data=SUP)  # the withdrawal in the ledger behind it
    created_at: Mapped[datetime] = column(UTCDateTime, data=SUP)
