"""Versioned policy documents (privacy policy, terms) and account holders' acceptances."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import Basis, Declaration, Purpose, Retention, column

DOC = Declaration(
    "system.legal_document", Purpose.ADMINISTRATIVE, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR
)
ACC = Declaration(
    "user.consent.policy_acceptance", Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.CONSENT_PROOF
)


class PolicyVersion(Base):
    """One published version of a document; the newest ``effective_on`` of a kind is in force."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("kind", "effective_on"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=DOC)
    kind: Mapped[str] = column(String(16), data=DOC)  # "privacy" | "terms"
    effective_on: Mapped[date] = column(Date, data=DOC)  # its "Last Updated" date
    title: Mapped[str] = column(String(200), data=DOC)
    body: Mapped[str] = column(Text, data=DOC)
    body_sha256: Mapped[str] = column(String(64), data=DOC)
    material: Mapped[bool] = column(default=False, data=DOC)
    summary: Mapped[str | None] = column(Text, nullable=True, data=DOC)  # what changed
    published_by: Mapped[str] = column(String(60), data=DOC)
    published_at: Mapped[datetime] = column(UTCDateTime, data=DOC)


class PolicyAcceptance(Base):
    """An account holder accepted a version. Append-only (database triggers refuse UPDATE and
    DELETE); no foreign key to the account, so the proof outlives an erased account as an id."""

    __tablename__ = "policy_acceptances"
    __table_args__ = (UniqueConstraint("user_id", "version_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=ACC)
    user_id: Mapped[int] = column(BigId, index=True, data=ACC)
    version_id: Mapped[int] = column(
        BigId, ForeignKey("policy_versions.id", ondelete="RESTRICT"), data=ACC
    )
    accepted_at: Mapped[datetime] = column(UTCDateTime, data=ACC)
    ip_truncated: Mapped[str | None] = column(
        String(64), nullable=True, data=ACC.of("user.device.ip.truncated")
    )
