"""Carrying out data-subject rights: restrictions of processing, the archives handed out for
access and portability, and the notices sent to recipients (GDPR art. 19).

Subjects are named by reference ("contact:5", "user:12"), like the consent ledger and the audit
log: these rows are records about a request being honoured, not copies of anyone's data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

# Proof that a right was honoured (who restricted, who was notified, when): the audit floor.
PROOF = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.AUDIT_FLOOR)
# An archive offered for download: deleted a few days after its link expires.
EXPORT = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.SHORT_LIVED_TOKEN)
# Where the platform's recipients take notices (operator configuration, not personal data).
ENDPOINT = Declaration(SYSTEM, Purpose.LEGAL, Basis.LEGAL_OBLIGATION, Retention.KEY_MATERIAL)


class ProcessingRestriction(Base):
    """While a restriction is in force (``lifted_at`` is null) the subject's data is kept but not
    processed: no sends, no automation, no exports (docs/privacy-rights.md)."""

    __tablename__ = "processing_restrictions"
    __table_args__ = (
        Index(
            "uq_processing_restrictions_active_subject",
            "subject",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=PROOF)
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, data=PROOF
    )
    subject: Mapped[str] = column(String(60), index=True, data=PROOF)  # "contact:5"
    request_id: Mapped[int | None] = column(BigId, nullable=True, data=PROOF)
    placed_by: Mapped[str] = column(String(60), data=PROOF)
    placed_at: Mapped[datetime] = column(UTCDateTime, data=PROOF)
    lifted_by: Mapped[str | None] = column(String(60), nullable=True, data=PROOF)
    lifted_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=PROOF)


class PrivacyExport(Base):
    """An access or portability archive: sealed under the subject's own key in
    ``<data dir>/exports``; its download link works once and for 24 hours."""

    __tablename__ = "privacy_exports"

    id: Mapped[int] = column(BigId, primary_key=True, data=EXPORT)
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, data=EXPORT
    )
    subject: Mapped[str] = column(String(60), index=True, data=EXPORT)
    kind: Mapped[str] = column(String(16), data=EXPORT)  # access | portability
    request_id: Mapped[int | None] = column(BigId, nullable=True, data=EXPORT)
    # The sealed file (random name; the content is the subject's data, sealed under their key).
    storage_key: Mapped[str | None] = column(
        String(200), nullable=True, data=EXPORT.of("user.export", encrypted=True)
    )
    size: Mapped[int] = column(BigInteger, default=0, data=EXPORT)
    files: Mapped[int] = column(Integer, default=0, data=EXPORT)  # entries in the archive
    # SHA-256 of the current download link's token (the token itself is only in the link).
    link_hash: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, unique=True, data=EXPORT.of("system.credential")
    )
    link_expires_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=EXPORT)
    created_by: Mapped[str] = column(String(60), data=EXPORT)
    created_at: Mapped[datetime] = column(UTCDateTime, data=EXPORT)
    expires_at: Mapped[datetime] = column(UTCDateTime, data=EXPORT)
    downloaded_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=EXPORT)
    deleted_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=EXPORT)


class RecipientNotice(Base):
    """A notice to one recipient that a subject's data was rectified, erased or restricted, sent
    by the ``privacy.notify_recipient`` job (signed webhook or e-mail) and acknowledged through
    its link. What the recipient needs to find the person is sealed under the notice's own key
    (``recipient_notice:<id>``), destroyed once the notice is acknowledged."""

    __tablename__ = "recipient_notices"
    __table_args__ = (Index("ix_recipient_notices_status", "status", "id"), NO_ID_REUSE)

    id: Mapped[int] = column(BigId, primary_key=True, data=PROOF)
    recipient_id: Mapped[str] = column(String(40), data=PROOF)  # processors.REGISTRY id
    workspace_id: Mapped[int | None] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, data=PROOF
    )
    subject: Mapped[str] = column(String(60), index=True, data=PROOF)
    right: Mapped[str] = column(String(16), data=PROOF)  # rectification | erasure | restriction
    request_id: Mapped[int | None] = column(BigId, nullable=True, data=PROOF)
    via: Mapped[str] = column(String(8), data=PROOF)  # webhook | email
    body_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=PROOF.of("user.notice", encrypted=True)
    )
    ack_hash: Mapped[bytes] = column(
        LargeBinary(32), unique=True, data=PROOF.of("system.credential")
    )
    status: Mapped[str] = column(String(16), default="pending", data=PROOF)
    attempts: Mapped[int] = column(Integer, default=0, data=PROOF)
    last_error: Mapped[str | None] = column(String(200), nullable=True, data=PROOF)
    created_at: Mapped[datetime] = column(UTCDateTime, data=PROOF)
    sent_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=PROOF)
    acknowledged_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=PROOF)


class RecipientEndpoint(Base):
    """Where a registry recipient takes notices: a webhook (HMAC-SHA256 with its own secret,
    sealed under ``recipient:<id>``) or an e-mail address of its privacy team."""

    __tablename__ = "recipient_endpoints"

    recipient_id: Mapped[str] = column(String(40), primary_key=True, data=ENDPOINT)
    webhook_url: Mapped[str | None] = column(String(500), nullable=True, data=ENDPOINT)
    secret_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=ENDPOINT.of("system.credential", encrypted=True)
    )
    email: Mapped[str | None] = column(
        String(320), nullable=True, data=ENDPOINT.of("business.contact.email")
    )
    updated_by: Mapped[str] = column(String(60), data=ENDPOINT)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=ENDPOINT)
