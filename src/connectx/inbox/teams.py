"""Teams: named groups of the workspace's answering members (owners, admins, agents)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.inbox import repository as repo
from connectx.inbox.assignment import check_assignee
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.inbox import Team


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 80:
        raise InvalidInput("A team name has 1 to 80 characters.", field="name")
    return name


async def _audit(db: AsyncSession, principal: Principal, action: str, **data: int | None) -> None:
    await audit.record(
        db,
        actor=principal.actor,
        action=action,
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data=dict(data),
    )


async def create(db: AsyncSession, principal: Principal, name: str) -> Team:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    name = _name(name)
    if await repo.team_by_name(db, ws, name) is not None:
        raise Conflict(f"There is already a team called {name!r}.", field="name")
    now = clock.now()
    team = Team(workspace_id=ws, name=name, created_at=now, updated_at=now)
    try:
        async with db.begin_nested():
            await repo.add(db, team)
    except IntegrityError:
        raise Conflict(f"There is already a team called {name!r}.", field="name") from None
    await _audit(db, principal, "inbox.team_created", team=team.id)
    return team


async def rename(db: AsyncSession, principal: Principal, team_id: int, name: str) -> Team:
    assert principal.workspace_id is not None
    team = await repo.team(db, principal.workspace_id, team_id)
    name = _name(name)
    other = await repo.team_by_name(db, principal.workspace_id, name)
    if other is not None and other.id != team.id:
        raise Conflict(f"There is already a team called {name!r}.", field="name")
    team.name = name
    team.updated_at = clock.now()
    await db.flush()
    await _audit(db, principal, "inbox.team_renamed", team=team.id)
    return team


async def delete(db: AsyncSession, principal: Principal, team_id: int) -> None:
    assert principal.workspace_id is not None
    team = await repo.team(db, principal.workspace_id, team_id)
    await repo.remove(db, team)
    await _audit(db, principal, "inbox.team_deleted", team=team_id)


async def add_member(db: AsyncSession, principal: Principal, team_id: int, user_id: int) -> None:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    await repo.team(db, ws, team_id)
    await check_assignee(db, ws, user_id)
    added = await repo.add_team_member(
        db, {"workspace_id": ws, "team_id": team_id, "user_id": user_id, "created_at": clock.now()}
    )
    if added:
        await _audit(db, principal, "inbox.team_member_added", team=team_id, user=user_id)


async def remove_member(db: AsyncSession, principal: Principal, team_id: int, user_id: int) -> None:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    await repo.team(db, ws, team_id)
    if await repo.remove_team_member(db, ws, team_id, user_id):
        await _audit(db, principal, "inbox.team_member_removed", team=team_id, user=user_id)


async def list_with_members(db: AsyncSession, workspace_id: int) -> list[tuple[Team, list[int]]]:
    teams = await repo.teams(db, workspace_id)
    members = await repo.team_members(db, workspace_id, [t.id for t in teams])
    return [(t, members.get(t.id, [])) for t in teams]


async def get_with_members(
    db: AsyncSession, workspace_id: int, team_id: int
) -> tuple[Team, list[int]]:
    team = await repo.team(db, workspace_id, team_id)
    members = await repo.team_members(db, workspace_id, [team.id])
    return team, members.get(team.id, [])
