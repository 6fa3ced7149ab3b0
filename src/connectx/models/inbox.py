"""The agent inbox: teams, routing (round-robin), labels, internal notes, canned responses,
read markers, notifications and members' inbox preferences (docs/inbox.md).

Internal notes are personal data about the contact (agents write about the customer): sealed
under the contact's subject key, so erasing the contact erases them. The contact-name search
index holds keyed hashes of name tokens (per workspace); see docs/inbox.md for the trade-off.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped

from connectx.db.base import Base, BigId, UTCDateTime
from connectx.kit.inventory import SYSTEM, Basis, Declaration, Purpose, Retention, column

INBOX = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.WORKSPACE_LIFETIME)
NOTE = Declaration(SYSTEM, Purpose.SERVICE, Basis.CONTRACT, Retention.MESSAGE_CONTENT)


def _ws() -> Mapped[int]:
    return column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=INBOX)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    name: Mapped[str] = column(String(80), data=INBOX.of("business.team_name"))
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    team_id: Mapped[int] = column(BigId, ForeignKey("teams.id", ondelete="CASCADE"), data=INBOX)
    user_id: Mapped[int] = column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True, data=INBOX
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class Routing(Base):
    """How a number's new conversations are assigned: ``manual`` or ``round_robin`` among the
    agents of ``team_id`` (or all owners, admins and agents). ``last_user_id`` is the cursor,
    moved under the row's lock."""

    __tablename__ = "inbox_routing"
    __table_args__ = (UniqueConstraint("channel_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    channel_id: Mapped[int] = column(
        BigId, ForeignKey("channels.id", ondelete="CASCADE"), data=INBOX
    )
    mode: Mapped[str] = column(String(16), default="manual", data=INBOX)
    team_id: Mapped[int | None] = column(
        BigId, ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, data=INBOX
    )
    last_user_id: Mapped[int | None] = column(BigId, nullable=True, data=INBOX)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    name: Mapped[str] = column(String(60), data=INBOX.of("business.label"))
    color: Mapped[str] = column(String(7), default="#888888", data=INBOX)
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"
    __table_args__ = (
        UniqueConstraint("conversation_id", "label_id"),
        Index("ix_conversation_labels_label", "label_id", "conversation_id"),
        # A page's labels (workspace, conversation IN …): without it SQLite's planner reads
        # every labelled conversation of the workspace through the workspace_id index.
        Index("ix_conversation_labels_conversation", "workspace_id", "conversation_id", "label_id"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    conversation_id: Mapped[int] = column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), data=INBOX
    )
    label_id: Mapped[int] = column(BigId, ForeignKey("labels.id", ondelete="CASCADE"), data=INBOX)
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class Note(Base):
    """An internal note on a conversation: members only, never sent to Meta."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_conversation", "conversation_id", "id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=NOTE)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, data=NOTE
    )
    conversation_id: Mapped[int] = column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), data=NOTE
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), index=True, data=NOTE
    )
    author_user_id: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, data=NOTE
    )
    body_enc: Mapped[bytes] = column(
        LargeBinary, data=NOTE.of("user.content.internal_note", encrypted=True)
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=NOTE)


class CannedResponse(Base):
    """A workspace's saved reply, inserted by typing ``/shortcut`` in the composer."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("workspace_id", "shortcut"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    shortcut: Mapped[str] = column(String(32), data=INBOX)
    title: Mapped[str] = column(String(120), data=INBOX.of("business.content"))
    body: Mapped[str] = column(Text, data=INBOX.of("business.content"))
    created_by: Mapped[int | None] = column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, data=INBOX
    )
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class ReadMarker(Base):
    """How far a member has read a conversation (the newest message time they saw)."""

    __tablename__ = "conversation_reads"
    __table_args__ = (
        UniqueConstraint("conversation_id", "user_id"),
        # A page's markers (member, workspace, conversation IN …), covering read_upto: the
        # (user, workspace) prefix alone made SQLite read all of a member's markers per page.
        Index(
            "ix_conversation_reads_member",
            "user_id",
            "workspace_id",
            "conversation_id",
            "read_upto",
        ),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    conversation_id: Mapped[int] = column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), data=INBOX
    )
    user_id: Mapped[int] = column(BigId, ForeignKey("users.id", ondelete="CASCADE"), data=INBOX)
    read_upto: Mapped[datetime] = column(UTCDateTime, data=INBOX)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class Notification(Base):
    """A member's in-app notification (the bell): ids and a kind, never message text."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user", "user_id", "workspace_id", "id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    user_id: Mapped[int] = column(BigId, ForeignKey("users.id", ondelete="CASCADE"), data=INBOX)
    kind: Mapped[str] = column(String(32), data=INBOX)  # "assigned"
    conversation_id: Mapped[int | None] = column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True, data=INBOX
    )
    actor: Mapped[str | None] = column(String(48), nullable=True, data=INBOX)  # "user:3"
    created_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)
    read_at: Mapped[datetime | None] = column(UTCDateTime, nullable=True, data=INBOX)


class InboxPreference(Base):
    """A member's inbox choices in one workspace."""

    __tablename__ = "inbox_preferences"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = _ws()
    user_id: Mapped[int] = column(BigId, ForeignKey("users.id", ondelete="CASCADE"), data=INBOX)
    email_on_assignment: Mapped[bool] = column(Boolean, default=False, data=INBOX)
    updated_at: Mapped[datetime] = column(UTCDateTime, data=INBOX)


class ContactNameToken(Base):
    """Keyed hashes of a contact's normalised name tokens and their prefixes, for search."""

    __tablename__ = "contact_name_tokens"
    __table_args__ = (
        UniqueConstraint("contact_id", "token_index"),
        Index("ix_contact_name_tokens_lookup", "workspace_id", "token_index", "contact_id"),
    )

    id: Mapped[int] = column(BigId, primary_key=True, data=INBOX)
    workspace_id: Mapped[int] = column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), data=INBOX
    )
    contact_id: Mapped[int] = column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), data=INBOX
    )
    token_index: Mapped[bytes] = column(LargeBinary(32), data=INBOX.of("user.name.blind_index"))
