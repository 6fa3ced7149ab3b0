"""SQL of the inbox: assignment, teams, routing, labels, notes, canned responses, read markers,
notifications and preferences. Every query is scoped to the workspace (kit.tenancy)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from connectx.conversations import paging
from connectx.kit.tenancy import get_in_workspace, scoped, scoped_update
from connectx.kit.upsert import dialect_insert, insert_ignore
from connectx.models.account import User
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.inbox import (
    CannedResponse,
    ContactNameToken,
    ConversationLabel,
    InboxPreference,
    Label,
    Note,
    Notification,
    ReadMarker,
    Routing,
    Team,
    TeamMember,
)
from connectx.models.workspace import Membership

ANSWERING_ROLES = ("owner", "admin", "agent")


async def add(db: AsyncSession, obj: object) -> None:
    db.add(obj)
    await db.flush()


async def remove(db: AsyncSession, obj: object) -> None:
    await db.delete(obj)
    await db.flush()


def _is_pg(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "postgresql"


# -- conversations ----------------------------------------------------------------------------
async def conversation(
    db: AsyncSession, workspace_id: int, conversation_id: int, *, lock: bool = False
) -> Conversation:
    if not lock or not _is_pg(db):
        return await get_in_workspace(
            db, Conversation, conversation_id, workspace_id, "conversation"
        )
    stmt = scoped(Conversation, workspace_id).where(Conversation.id == conversation_id)
    row = (await db.execute(stmt.with_for_update())).scalar_one_or_none()
    if row is None:
        return await get_in_workspace(
            db, Conversation, conversation_id, workspace_id, "conversation"
        )
    return row


async def assign_if_unassigned(
    db: AsyncSession, workspace_id: int, conversation_id: int, user_id: int, at: datetime
) -> bool:
    """Set the assignee unless someone was assigned meanwhile (compare-and-set)."""
    result = await db.execute(
        scoped_update(Conversation, workspace_id)
        .where(
            Conversation.id == conversation_id,
            Conversation.assignee_user_id.is_(None),
            Conversation.status != "resolved",
        )
        .values(assignee_user_id=user_id, assigned_at=at, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def due_snoozes(db: AsyncSession, now: datetime, limit: int) -> list[Conversation]:
    """Snoozed conversations whose time came, any workspace (the wake-up sweep), locked."""
    stmt = (
        select(Conversation)
        .where(Conversation.snoozed_until.is_not(None), Conversation.snoozed_until <= now)
        .order_by(Conversation.snoozed_until, Conversation.id)
        .limit(limit)
    )
    if _is_pg(db):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await db.execute(stmt)).scalars())


# -- members and teams ------------------------------------------------------------------------
async def role_of(db: AsyncSession, workspace_id: int, user_id: int) -> str | None:
    stmt = scoped(Membership, workspace_id, Membership.role).where(Membership.user_id == user_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def team(db: AsyncSession, workspace_id: int, team_id: int) -> Team:
    return await get_in_workspace(db, Team, team_id, workspace_id, "team")


async def teams(db: AsyncSession, workspace_id: int) -> list[Team]:
    return list((await db.execute(scoped(Team, workspace_id).order_by(Team.name))).scalars())


async def team_by_name(db: AsyncSession, workspace_id: int, name: str) -> Team | None:
    stmt = scoped(Team, workspace_id).where(func.lower(Team.name) == name.lower())
    return (await db.execute(stmt)).scalars().first()


async def team_members(
    db: AsyncSession, workspace_id: int, team_ids: list[int]
) -> dict[int, list[int]]:
    if not team_ids:
        return {}
    stmt = (
        scoped(TeamMember, workspace_id, TeamMember.team_id, TeamMember.user_id)
        .where(TeamMember.team_id.in_(set(team_ids)))
        .order_by(TeamMember.user_id)
    )
    out: dict[int, list[int]] = {t: [] for t in team_ids}
    for team_id, user_id in (await db.execute(stmt)).all():
        out[team_id].append(user_id)
    return out


async def add_team_member(db: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = insert_ignore(db, TeamMember, values).returning(TeamMember.id)
    return (await db.execute(stmt)).scalar_one_or_none() is not None


async def remove_team_member(
    db: AsyncSession, workspace_id: int, team_id: int, user_id: int
) -> bool:
    result = await db.execute(
        delete(TeamMember).where(
            TeamMember.workspace_id == workspace_id,
            TeamMember.team_id == team_id,
            TeamMember.user_id == user_id,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def answering_accounts(db: AsyncSession, workspace_id: int) -> list[User]:
    """The accounts of the owners, admins and agents (one statement)."""
    stmt = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id, Membership.role.in_(ANSWERING_ROLES))
        .order_by(User.id)
    )
    return list((await db.execute(stmt)).scalars())


async def answering_members(db: AsyncSession, workspace_id: int, team_id: int | None) -> list[int]:
    """User ids (ascending) of the owners, admins and agents, of ``team_id`` when given."""
    stmt = scoped(Membership, workspace_id, Membership.user_id).where(
        Membership.role.in_(ANSWERING_ROLES)
    )
    if team_id is not None:
        stmt = stmt.where(
            Membership.user_id.in_(
                scoped(TeamMember, workspace_id, TeamMember.user_id).where(
                    TeamMember.team_id == team_id
                )
            )
        )
    return list((await db.execute(stmt.order_by(Membership.user_id))).scalars())


# -- routing ----------------------------------------------------------------------------------
async def routing(
    db: AsyncSession, workspace_id: int, channel_id: int, *, lock: bool = False
) -> Routing | None:
    stmt = scoped(Routing, workspace_id).where(Routing.channel_id == channel_id)
    if lock and _is_pg(db):
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).scalar_one_or_none()


async def routings(db: AsyncSession, workspace_id: int) -> list[Routing]:
    stmt = scoped(Routing, workspace_id).order_by(Routing.channel_id)
    return list((await db.execute(stmt)).scalars())


async def ensure_routing(db: AsyncSession, values: dict[str, Any]) -> None:
    await db.execute(insert_ignore(db, Routing, values))


async def round_robin_channels(db: AsyncSession, channel_ids: Sequence[int]) -> set[int]:
    if not channel_ids:
        return set()
    stmt = select(Routing.channel_id).where(
        Routing.channel_id.in_(set(channel_ids)), Routing.mode == "round_robin"
    )
    return set((await db.execute(stmt)).scalars())


async def unassigned_open(
    db: AsyncSession, workspace_id: int, conversation_ids: Sequence[int]
) -> list[Conversation]:
    if not conversation_ids:
        return []
    stmt = (
        scoped(Conversation, workspace_id)
        .where(
            Conversation.id.in_(set(conversation_ids)),
            Conversation.assignee_user_id.is_(None),
            Conversation.status != "resolved",
        )
        .order_by(Conversation.id)
    )
    return list((await db.execute(stmt)).scalars())


# -- labels -----------------------------------------------------------------------------------
async def label(db: AsyncSession, workspace_id: int, label_id: int) -> Label:
    return await get_in_workspace(db, Label, label_id, workspace_id, "label")


async def labels(db: AsyncSession, workspace_id: int) -> list[Label]:
    return list((await db.execute(scoped(Label, workspace_id).order_by(Label.name))).scalars())


async def label_by_name(db: AsyncSession, workspace_id: int, name: str) -> Label | None:
    stmt = scoped(Label, workspace_id).where(func.lower(Label.name) == name.lower())
    return (await db.execute(stmt)).scalars().first()


async def attach_label(db: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = insert_ignore(db, ConversationLabel, values).returning(ConversationLabel.id)
    return (await db.execute(stmt)).scalar_one_or_none() is not None


async def detach_label(
    db: AsyncSession, workspace_id: int, conversation_id: int, label_id: int
) -> bool:
    result = await db.execute(
        delete(ConversationLabel).where(
            ConversationLabel.workspace_id == workspace_id,
            ConversationLabel.conversation_id == conversation_id,
            ConversationLabel.label_id == label_id,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def labels_of(
    db: AsyncSession, workspace_id: int, conversation_ids: Sequence[int]
) -> dict[int, list[int]]:
    """Label ids of each conversation."""
    if not conversation_ids:
        return {}
    stmt = (
        scoped(
            ConversationLabel,
            workspace_id,
            ConversationLabel.conversation_id,
            ConversationLabel.label_id,
        )
        .where(ConversationLabel.conversation_id.in_(set(conversation_ids)))
        .order_by(ConversationLabel.label_id)
    )
    out: dict[int, list[int]] = {c: [] for c in conversation_ids}
    for conversation_id, label_id in (await db.execute(stmt)).all():
        out[conversation_id].append(label_id)
    return out


# -- notes ------------------------------------------------------------------------------------
async def notes(
    db: AsyncSession,
    workspace_id: int,
    conversation_id: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Note]:
    stmt = scoped(Note, workspace_id).where(Note.conversation_id == conversation_id)
    if start is not None:
        stmt = stmt.where(Note.created_at >= start)
    if end is not None:
        stmt = stmt.where(Note.created_at < end)
    return list((await db.execute(stmt.order_by(Note.id))).scalars())


# -- canned responses -------------------------------------------------------------------------
async def canned(db: AsyncSession, workspace_id: int, canned_id: int) -> CannedResponse:
    return await get_in_workspace(db, CannedResponse, canned_id, workspace_id, "canned response")


async def canned_list(
    db: AsyncSession, workspace_id: int, prefix: str | None
) -> list[CannedResponse]:
    stmt = scoped(CannedResponse, workspace_id)
    if prefix:
        stmt = stmt.where(CannedResponse.shortcut.startswith(prefix, autoescape=True))
    return list((await db.execute(stmt.order_by(CannedResponse.shortcut))).scalars())


async def canned_by_shortcut(
    db: AsyncSession, workspace_id: int, shortcut: str
) -> CannedResponse | None:
    stmt = scoped(CannedResponse, workspace_id).where(CannedResponse.shortcut == shortcut)
    return (await db.execute(stmt)).scalar_one_or_none()


# -- read markers -----------------------------------------------------------------------------
async def read_marker(
    db: AsyncSession, workspace_id: int, conversation_id: int, user_id: int
) -> ReadMarker | None:
    stmt = scoped(ReadMarker, workspace_id).where(
        ReadMarker.conversation_id == conversation_id, ReadMarker.user_id == user_id
    )
    return (await db.execute(stmt)).scalar_one_or_none()


_upserts: dict[str, Any] = {}


def _marker_upsert(db: AsyncSession) -> Any:
    """The statement, built once per dialect: building ``excluded`` (an alias of the table)
    made every column's proxy again on every thread page opened."""
    name = db.get_bind().dialect.name
    stmt = _upserts.get(name)
    if stmt is None:
        base = dialect_insert(db, ReadMarker)  # the values: the parameters given with it
        stmt = _upserts[name] = base.on_conflict_do_update(
            index_elements=[ReadMarker.conversation_id, ReadMarker.user_id],
            set_={"read_upto": base.excluded.read_upto, "updated_at": base.excluded.updated_at},
            where=ReadMarker.read_upto < base.excluded.read_upto,
        )
    return stmt


async def upsert_read_marker(db: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the marker, or move it forward (never back), in one statement."""
    await db.execute(_marker_upsert(db), values)


async def read_upto(
    db: AsyncSession, workspace_id: int, user_id: int, conversation_ids: Sequence[int]
) -> dict[int, datetime]:
    if not conversation_ids:
        return {}
    stmt = scoped(ReadMarker, workspace_id, ReadMarker.conversation_id, ReadMarker.read_upto).where(
        ReadMarker.user_id == user_id, ReadMarker.conversation_id.in_(set(conversation_ids))
    )
    return {c: at for c, at in (await db.execute(stmt)).all()}


# -- notifications ----------------------------------------------------------------------------
async def notifications(
    db: AsyncSession,
    workspace_id: int,
    user_id: int,
    *,
    unread: bool,
    before_id: int | None,
    limit: int,
) -> list[Notification]:
    stmt = scoped(Notification, workspace_id).where(Notification.user_id == user_id)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(Notification.id < before_id)
    stmt = stmt.order_by(Notification.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


async def unread_notifications(db: AsyncSession, workspace_id: int, user_id: int) -> int:
    stmt = scoped(Notification, workspace_id, func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int((await db.execute(stmt)).scalar_one())


async def notification(
    db: AsyncSession, workspace_id: int, user_id: int, notification_id: int
) -> Notification:
    found = await get_in_workspace(db, Notification, notification_id, workspace_id, "notification")
    if found.user_id != user_id:  # another member's: as if it did not exist
        from connectx.kit.errors import NotFound

        raise NotFound(f"No notification {notification_id} in this workspace.")
    return found


async def mark_notifications_read(
    db: AsyncSession, workspace_id: int, user_id: int, at: datetime
) -> int:
    result = await db.execute(
        scoped_update(Notification, workspace_id)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- preferences ------------------------------------------------------------------------------
async def preference(db: AsyncSession, workspace_id: int, user_id: int) -> InboxPreference | None:
    stmt = scoped(InboxPreference, workspace_id).where(InboxPreference.user_id == user_id)
    return (await db.execute(stmt)).scalar_one_or_none()


# -- contact name search ----------------------------------------------------------------------
def write_name_tokens(session: Session, pending: dict[int, tuple[int, list[bytes]]]) -> None:
    """Replace the name tokens of the contacts in ``pending`` (contact id -> (workspace,
    hashes)); contacts deleted meanwhile (merged away) are skipped. Sync: runs in the commit."""
    from connectx.models.contact import Contact

    ids = sorted(pending)
    alive = set(session.execute(select(Contact.id).where(Contact.id.in_(ids))).scalars())
    session.execute(delete(ContactNameToken).where(ContactNameToken.contact_id.in_(ids)))
    rows = [
        {"workspace_id": ws, "contact_id": contact_id, "token_index": h}
        for contact_id, (ws, hashes) in sorted(pending.items())
        if contact_id in alive
        for h in hashes
    ]
    for start in range(0, len(rows), 1000):
        session.execute(insert(ContactNameToken), rows[start : start + 1000])


async def contacts_without_name_tokens(
    db: AsyncSession, after_id: int, limit: int
) -> list[Contact]:
    """Contacts of any workspace (the backfill sweep) with a sealed name and no name tokens,
    by id, above ``after_id``."""
    has_tokens = select(ContactNameToken.id).where(ContactNameToken.contact_id == Contact.id)
    stmt = (
        select(Contact)
        .where(Contact.id > after_id, Contact.name_enc.is_not(None), ~has_tokens.exists())
        .order_by(Contact.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


def contacts_with_tokens(workspace_id: int, hashes: list[bytes]) -> Any:
    """Subquery: the workspace's contact ids holding every one of ``hashes``."""
    return (
        scoped(ContactNameToken, workspace_id, ContactNameToken.contact_id)
        .where(ContactNameToken.token_index.in_(hashes))
        .group_by(ContactNameToken.contact_id)
        .having(func.count(func.distinct(ContactNameToken.token_index)) == len(hashes))
    )


# -- the inbox list ---------------------------------------------------------------------------
def _with_unread(stmt: Any, workspace_id: int, user_id: int) -> Any:
    """``stmt`` narrowed to conversations with an inbound message newer than ``user_id``'s
    marker: an outer join on the member's markers (one covering-index probe per conversation,
    ``ix_conversation_reads_member``), not two correlated subqueries per row."""
    return stmt.outerjoin(
        ReadMarker,
        and_(
            ReadMarker.user_id == user_id,
            ReadMarker.workspace_id == workspace_id,
            ReadMarker.conversation_id == Conversation.id,
        ),
    ).where(
        Conversation.last_inbound_at.is_not(None),
        or_(ReadMarker.read_upto.is_(None), Conversation.last_inbound_at > ReadMarker.read_upto),
    )


async def inbox_page(
    db: AsyncSession,
    workspace_id: int,
    *,
    user_id: int | None,
    view: str,
    status: str | None,
    channel_id: int | None,
    team_id: int | None,
    label_id: int | None,
    contact_ids: Any | None,
    unread_only: bool,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Conversation]:
    """Most recent activity first, keyset-paginated on (last_message_at, id)."""
    stmt = scoped(Conversation, workspace_id)
    if view == "mine":
        stmt = stmt.where(Conversation.assignee_user_id == user_id)
    elif view == "unassigned":
        stmt = stmt.where(Conversation.assignee_user_id.is_(None))
    if status is not None:
        stmt = stmt.where(Conversation.status == status)
    if channel_id is not None:
        stmt = stmt.where(Conversation.channel_id == channel_id)
    if team_id is not None:
        stmt = stmt.where(Conversation.team_id == team_id)
    if label_id is not None:
        stmt = stmt.where(
            Conversation.id.in_(
                scoped(ConversationLabel, workspace_id, ConversationLabel.conversation_id).where(
                    ConversationLabel.label_id == label_id
                )
            )
        )
    if contact_ids is not None:
        stmt = stmt.where(Conversation.contact_id.in_(contact_ids))
    if unread_only and user_id is not None:
        stmt = _with_unread(stmt, workspace_id, user_id)
    if after is not None:
        stmt = stmt.where(paging.before(Conversation.last_message_at, Conversation.id, after))
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


async def unread_counts(db: AsyncSession, workspace_id: int, user_id: int) -> dict[str, int]:
    """Unresolved conversations with unread customer messages: assigned to ``user_id``,
    unassigned, and all. Reads the partial index of unresolved conversations
    (``ix_conversations_unresolved_inbound``) and the member's markers, both index-only: never
    messages, never resolved conversations."""
    mine = case((Conversation.assignee_user_id == user_id, 1), else_=0)
    nobody = case((Conversation.assignee_user_id.is_(None), 1), else_=0)
    stmt = scoped(Conversation, workspace_id, func.count(), func.sum(mine), func.sum(nobody)).where(
        Conversation.status != "resolved"  # the partial index's own condition, word for word
    )
    stmt = _with_unread(stmt, workspace_id, user_id)
    total, mine_n, nobody_n = (await db.execute(stmt)).one()
    return {"mine": int(mine_n or 0), "unassigned": int(nobody_n or 0), "all": int(total or 0)}


async def contact_by_phone_index(
    db: AsyncSession, workspace_id: int, phone_index: bytes
) -> int | None:
    from connectx.models.contact import Contact

    stmt = scoped(Contact, workspace_id, Contact.id).where(Contact.phone_index == phone_index)
    return (await db.execute(stmt)).scalar_one_or_none()


async def conversations_of_contact(
    db: AsyncSession, workspace_id: int, contact_id: int, limit: int
) -> list[Conversation]:
    stmt = (
        scoped(Conversation, workspace_id)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())
