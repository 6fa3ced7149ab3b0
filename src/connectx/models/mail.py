"""Outgoing e-mail. Sent by SMTP when configured; otherwise kept here for the operator to read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

M = Declaration(SYSTEM, Purpose.ADMINISTRATIVE, Basis.CONTRACT, Retention.MAIL_OUTBOX)


class MailMessage(Base):
    __tablename__ = "mail_messages"

    id: Mapped[int] = column(BigId, primary_key=True, data=M)
    # Whose subject key encrypts this message: a user, or an invitation for invitees.
    subject: Mapped[str] = column(String(60), data=M)
    kind: Mapped[str] = column(String(40), data=M)  # verify_email, reset_password, invitation, ...
    to_enc: Mapped[bytes] = column(LargeBinary, data=M.of("user.contact.email", encrypted=True))
    subject_line_enc: Mapped[bytes] = column(
        LargeBinary, data=M.of("user.content.mail", encrypted=True)
    )
    body_enc: Mapped[bytes] = column(LargeBinary, data=M.of("user.content.mail", encrypted=True))
    status: Mapped[str] = column(String(16), default="queued", data=M)  # queued|sent|local|failed
    attempts: Mapped[int] = column(Integer, default=0, data=M)
    user_id: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True, data=M
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=M)
    sent_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=M)
