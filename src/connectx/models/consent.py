"""The consent ledger: append-only; the current state is derived from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import Basis, Declaration, Purpose, Retention, column

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
