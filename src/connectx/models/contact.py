"""End customers who write to a workspace's numbers.

Identity: the business-scoped user id (BSUID) when Meta sends one, the phone (wa_id) otherwise;
both are linked when seen together. Every identifying field is sealed under the contact's own
subject key (``contact:<id>`` in the workspace scope); equality lookups use keyed hashes computed
per workspace, so the same person in two workspaces cannot be correlated through them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import NO_ID_REUSE, Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

CT = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
# Who the contact is: anonymised once the contact has been inactive for the period
# (docs/retention.md); the row itself stays so conversations and counts keep their shape.
WHO = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.CONTACT_INACTIVITY)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "phone_index"),
        UniqueConstraint("workspace_id", "bsuid_index"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=CT)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=CT
    )
    phone_index: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, data=WHO.of("user.contact.phone.blind_index")
    )
    phone_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=WHO.of("user.contact.phone", encrypted=True)
    )
    bsuid_index: Mapped[bytes | None] = column(
        LargeBinary(32), nullable=True, data=WHO.of("user.unique_id.blind_index")
    )
    bsuid_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=WHO.of("user.unique_id", encrypted=True)
    )
    name_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=WHO.of("user.name", encrypted=True)
    )
    # Other profile facts Meta shares (username, parent BSUID), as sealed JSON.
    profile_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=WHO.of("user.profile", encrypted=True)
    )
    # Attributes the workspace's members keep about the contact (docs/inbox.md), sealed JSON.
    attributes_enc: Mapped[bytes | None] = column(
        LargeBinary, nullable=True, data=CT.of("user.profile.custom", encrypted=True)
    )
    identity_changed_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CT)
    last_inbound_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=CT)
    created_at: Mapped[datetime] = column(UTCDateTime, data=CT)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=CT)


PREF = Declaration(
    "user.consent.whatsapp_preference",
    Purpose.LEGAL,
    Basis.LEGAL_OBLIGATION,
    Retention.CONSENT_PROOF,
)


class ContactPreferenceEvent(Base):
    """A ``user_preferences`` webhook: the person stopped or resumed marketing messages."""

    __tablename__ = "contact_preference_events"
    __table_args__ = (UniqueConstraint("contact_id", "category", "value", "occurred_at"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=PREF)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=PREF
    )
    channel_id: Mapped[int] = column(
        BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=PREF
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=PREF
    )
    category: Mapped[str] = column(String(64), data=PREF)  # "marketing_messages"
    value: Mapped[str] = column(String(32), data=PREF)  # "stop" | "resume"
    occurred_at: Mapped[datetime] = column(UTCDateTime, data=PREF)
    created_at: Mapped[datetime] = column(UTCDateTime, data=PREF)
