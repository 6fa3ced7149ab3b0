"""A member's notifications: the in-app bell (``notification.new`` to their streams only) and,
when they asked for it, an e-mail on assignment. Mails name the conversation by number and link
to it; they never carry message text, the customer's name or number."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Forbidden
from connectx.models.conversation import Conversation
from connectx.models.inbox import InboxPreference, Notification
from connectx.realtime import publish as realtime

MAX_PAGE = 100


def conversation_link(conversation_id: int) -> str:
    return f"{get_settings().effective_public_url}/inbox/c/{conversation_id}"


async def assigned(
    db: AsyncSession, conversation: Conversation, user_id: int, *, actor: str
) -> Notification:
    ws = conversation.workspace_id
    note = Notification(
        workspace_id=ws,
        user_id=user_id,
        kind="assigned",
        conversation_id=conversation.id,
        actor=actor,
        created_at=clock.now(),
    )
    await repo.add(db, note)
    realtime.after_commit(
        db,
        ws,
        "notification.new",
        user_id=user_id,
        notification_id=note.id,
        kind="assigned",
        conversation_id=conversation.id,
    )
    preference = await repo.preference(db, ws, user_id)
    if preference is not None and preference.email_on_assignment:
        await _mail_assignment(db, ws, user_id, conversation.id)
    return note


async def _mail_assignment(db: AsyncSession, workspace_id: int, user_id: int, cid: int) -> None:
    from connectx.accounts.service import email_of
    from connectx.mail import service as mail
    from connectx.workspaces import repository as workspaces

    user = await workspaces.user(db, user_id)
    workspace = await workspaces.workspace(db, workspace_id)
    if user is None or workspace is None:
        return
    await mail.send(
        db,
        to=await email_of(db, user),
        subject=f"Conversation #{cid} was assigned to you",
        body=(
            f"A conversation in {workspace.name} (#{cid}) was assigned to you.\n\n"
            f"Open it: {conversation_link(cid)}\n\n"
            "You get this e-mail because you asked for one on assignment; turn it off in your "
            "inbox preferences."
        ),
        kind="inbox_assignment",
        subject_ref=f"user:{user_id}",
        user_id=user_id,
    )


def _person(principal: Principal) -> tuple[int, int]:
    if principal.user_id is None or principal.workspace_id is None:
        raise Forbidden("Notifications belong to signed-in members, not API keys.")
    return principal.workspace_id, principal.user_id


async def list_for(
    db: AsyncSession, principal: Principal, *, unread: bool, before_id: int | None, limit: int
) -> tuple[list[Notification], int]:
    ws, user_id = _person(principal)
    limit = max(1, min(limit, MAX_PAGE))
    items = await repo.notifications(
        db, ws, user_id, unread=unread, before_id=before_id, limit=limit
    )
    return items, await repo.unread_notifications(db, ws, user_id)


async def unread_count(db: AsyncSession, principal: Principal) -> int:
    ws, user_id = _person(principal)
    return await repo.unread_notifications(db, ws, user_id)


async def mark_read(db: AsyncSession, principal: Principal, notification_id: int) -> Notification:
    ws, user_id = _person(principal)
    note = await repo.notification(db, ws, user_id, notification_id)
    if note.read_at is None:
        note.read_at = clock.now()
        await db.flush()
    return note


async def mark_all_read(db: AsyncSession, principal: Principal) -> int:
    ws, user_id = _person(principal)
    return await repo.mark_notifications_read(db, ws, user_id, clock.now())


async def preferences(db: AsyncSession, principal: Principal) -> InboxPreference:
    ws, user_id = _person(principal)
    found = await repo.preference(db, ws, user_id)
    if found is None:
        found = InboxPreference(
            workspace_id=ws, user_id=user_id, email_on_assignment=False, updated_at=clock.now()
        )
    return found


async def set_preferences(
    db: AsyncSession, principal: Principal, *, email_on_assignment: bool
) -> InboxPreference:
    ws, user_id = _person(principal)
    found = await repo.preference(db, ws, user_id)
    if found is None:
        found = InboxPreference(workspace_id=ws, user_id=user_id, updated_at=clock.now())
        found.email_on_assignment = email_on_assignment
        await repo.add(db, found)
    else:
        found.email_on_assignment = email_on_assignment
        found.updated_at = clock.now()
        await db.flush()
    await audit.record(
        db,
        actor=principal.actor,
        action="inbox.preferences_changed",
        subject=f"user:{user_id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"email_on_assignment": email_on_assignment},
    )
    return found
