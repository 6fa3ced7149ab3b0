"""Who answers a conversation: a member, a team, or both; round-robin for a number's new
conversations; snoozing until a time.

Assigning checks that the person is an owner, admin or agent of the workspace (analysts do not
answer customers) and the team exists here. A change is audited in the same transaction, the
workspace's browsers learn it after commit (``conversation.assigned``), and the new assignee is
notified (in the app, and by e-mail when they asked for it).

Round-robin (per number, :func:`auto_assign`) gives each new unassigned conversation to the
next owner/admin/agent (of the number's team, when set) after the last one chosen, in user-id
order. The webhook processor calls :func:`assign_opened` inside the transaction that opens the
conversations, so an assignment commits (or rolls back) with them and cannot be lost. The
routing row is locked while choosing (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), and
the conversation is assigned only if still unassigned (compare-and-set), so two processes never
pick twice nor skip anyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.inbox import notifications
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput, NotFound
from connectx.models.conversation import Conversation
from connectx.models.inbox import Routing
from connectx.realtime import publish as realtime

MAX_SNOOZE = timedelta(days=366)
ROUTING_MODES = ("manual", "round_robin")


async def check_assignee(db: AsyncSession, workspace_id: int, user_id: int) -> None:
    role = await repo.role_of(db, workspace_id, user_id)
    if role is None:
        raise NotFound(f"No member with user id {user_id} in this workspace.")
    if role not in repo.ANSWERING_ROLES:
        raise InvalidInput(
            f"User {user_id} is an {role}: only owners, admins and agents answer conversations.",
            field="user_id",
        )


def _actor_user(principal: Principal) -> int:
    if principal.user_id is None:
        raise InvalidInput("An API key cannot assign a conversation to itself; name a user_id.")
    return principal.user_id


async def assign(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    *,
    user_id: int | None,
    team_id: int | None,
    to_me: bool = False,
) -> Conversation:
    """Set (or clear, with None) the conversation's assignee and team."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    if to_me:
        user_id = _actor_user(principal)
    if user_id is not None:
        await check_assignee(db, ws, user_id)
    if team_id is not None:
        await repo.team(db, ws, team_id)
    conversation = await repo.conversation(db, ws, conversation_id, lock=True)
    await _apply(db, conversation, user_id, team_id, actor=principal.actor, ip=principal.ip)
    return conversation


async def _apply(
    db: AsyncSession,
    conversation: Conversation,
    user_id: int | None,
    team_id: int | None,
    *,
    actor: str,
    ip: str | None = None,
    rule: str | None = None,
) -> bool:
    before_user, before_team = conversation.assignee_user_id, conversation.team_id
    if (before_user, before_team) == (user_id, team_id):
        return False
    now = clock.now()
    conversation.assignee_user_id = user_id
    conversation.team_id = team_id
    if user_id != before_user:
        conversation.assigned_at = now if user_id is not None else None
    conversation.updated_at = now
    await db.flush()
    data: dict[str, int | str | None] = {
        "conversation": conversation.id,
        "from_user": before_user,
        "to_user": user_id,
        "from_team": before_team,
        "to_team": team_id,
    }
    if rule:
        data["rule"] = rule
    await audit.record(
        db,
        actor=actor,
        action="conversation.assigned",
        subject=f"contact:{conversation.contact_id}",
        workspace_id=conversation.workspace_id,
        ip=ip,
        data=data,
    )
    realtime.after_commit(
        db,
        conversation.workspace_id,
        "conversation.assigned",
        conversation_id=conversation.id,
        assignee_user_id=user_id,
        team_id=team_id,
    )
    if user_id is not None and user_id != before_user and actor != f"user:{user_id}":
        await notifications.assigned(db, conversation, user_id, actor=actor)
    return True


# -- round-robin ------------------------------------------------------------------------------
async def set_routing(
    db: AsyncSession, principal: Principal, channel_id: int, mode: str, team_id: int | None
) -> Routing:
    from connectx.channels import repository as channels

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    await channels.get(db, ws, channel_id)
    if mode not in ROUTING_MODES:
        raise InvalidInput(f"mode is one of {', '.join(ROUTING_MODES)}.", field="mode")
    if team_id is not None:
        await repo.team(db, ws, team_id)
    now = clock.now()
    await repo.ensure_routing(
        db, {"workspace_id": ws, "channel_id": channel_id, "mode": "manual", "updated_at": now}
    )
    routing = await repo.routing(db, ws, channel_id, lock=True)
    assert routing is not None
    routing.mode = mode
    routing.team_id = team_id
    routing.updated_at = now
    await db.flush()
    await audit.record(
        db,
        actor=principal.actor,
        action="inbox.routing_changed",
        workspace_id=ws,
        ip=principal.ip,
        data={"channel": channel_id, "mode": mode, "team": team_id},
    )
    return routing


async def routing_of(db: AsyncSession, workspace_id: int) -> list[Routing]:
    return await repo.routings(db, workspace_id)


def next_in_turn(members: list[int], last: int | None) -> int:
    """The member after ``last`` in ascending id order, wrapping around (``members`` sorted)."""
    if last is not None:
        for user_id in members:
            if user_id > last:
                return user_id
    return members[0]


async def assign_opened(db: AsyncSession, opened: list[Conversation]) -> int:
    """Round-robin the conversations just opened in the caller's transaction (the webhook
    processor's) on numbers whose rule is round-robin; how many were assigned. One query when
    none of their numbers is round-robin."""
    if not opened:
        return 0
    rr = await repo.round_robin_channels(db, sorted({c.channel_id for c in opened}))
    due: dict[int, set[int]] = {}
    for conversation in opened:
        if conversation.channel_id in rr:
            due.setdefault(conversation.workspace_id, set()).add(conversation.id)
    done = 0
    for workspace_id in sorted(due):
        done += await auto_assign(db, workspace_id, sorted(due[workspace_id]))
    return done


async def auto_assign(db: AsyncSession, workspace_id: int, conversation_ids: list[int]) -> int:
    """Give these conversations, where still unassigned and their number is round-robin, to the
    next members in turn. How many were assigned."""
    candidates = await repo.unassigned_open(db, workspace_id, conversation_ids)
    if not candidates:
        return 0
    rr = await repo.round_robin_channels(db, sorted({c.channel_id for c in candidates}))
    done = 0
    for channel_id in sorted(rr):
        routing = await repo.routing(db, workspace_id, channel_id, lock=True)
        if routing is None or routing.mode != "round_robin":
            continue
        members = await repo.answering_members(db, workspace_id, routing.team_id)
        if not members:
            continue
        for conversation in [c for c in candidates if c.channel_id == channel_id]:
            chosen = next_in_turn(members, routing.last_user_id)
            if not await repo.assign_if_unassigned(
                db, workspace_id, conversation.id, chosen, clock.now()
            ):
                continue
            await db.refresh(conversation)
            routing.last_user_id = chosen
            routing.updated_at = clock.now()
            done += 1
            await audit.record(
                db,
                actor="system",
                action="conversation.assigned",
                subject=f"contact:{conversation.contact_id}",
                workspace_id=workspace_id,
                data={
                    "conversation": conversation.id,
                    "from_user": None,
                    "to_user": chosen,
                    "rule": "round_robin",
                },
            )
            realtime.after_commit(
                db,
                workspace_id,
                "conversation.assigned",
                conversation_id=conversation.id,
                assignee_user_id=chosen,
                team_id=conversation.team_id,
            )
            await notifications.assigned(db, conversation, chosen, actor="system")
        await db.flush()
    return done


# -- snoozing ---------------------------------------------------------------------------------
async def snooze(
    db: AsyncSession, principal: Principal, conversation_id: int, until: datetime
) -> Conversation:
    """Set the conversation aside (pending) until ``until``; it comes back as open then, or
    earlier when the customer writes."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await repo.conversation(db, ws, conversation_id, lock=True)
    now = clock.now()
    if until.tzinfo is None:
        raise InvalidInput("until needs a time zone (e.g. 2026-12-04T09:00:00Z).", field="until")
    if until <= now:
        raise InvalidInput("until must be in the future.", field="until")
    if until - now > MAX_SNOOZE:
        raise InvalidInput("A conversation can be snoozed for at most a year.", field="until")
    if conversation.status == "resolved":
        raise Conflict("A resolved conversation cannot be snoozed; reopen it first.")
    before = conversation.status
    conversation.status = "pending"
    conversation.snoozed_until = until
    conversation.updated_at = now
    await db.flush()
    await audit.record(
        db,
        actor=principal.actor,
        action="conversation.snoozed",
        subject=f"contact:{conversation.contact_id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": conversation.id, "from": before, "minutes": _minutes(until - now)},
    )
    realtime.after_commit(
        db, ws, "conversation.status", conversation_id=conversation.id, status="pending"
    )
    realtime.after_commit(
        db, ws, "conversation.updated", conversation_id=conversation.id, change="snoozed"
    )
    return conversation


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def wake_due(db: AsyncSession, limit: int = 500) -> int:
    """Bring back snoozed conversations whose time has come (status open). A conversation the
    customer already reopened, or someone resolved, only loses its snooze time."""
    woken = 0
    for conversation in await repo.due_snoozes(db, clock.now(), limit):
        conversation.snoozed_until = None
        conversation.updated_at = clock.now()
        if conversation.status != "pending":
            continue
        conversation.status = "open"
        woken += 1
        await audit.record(
            db,
            actor="system",
            action="conversation.status_changed",
            subject=f"contact:{conversation.contact_id}",
            workspace_id=conversation.workspace_id,
            data={
                "conversation": conversation.id,
                "from": "pending",
                "to": "open",
                "rule": "snooze",
            },
        )
        realtime.after_commit(
            db,
            conversation.workspace_id,
            "conversation.status",
            conversation_id=conversation.id,
            status="open",
        )
    await db.flush()
    return woken
