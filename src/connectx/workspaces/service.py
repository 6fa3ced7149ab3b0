"""Workspaces (a business is a tenant) and their members.

Services never commit; each change writes its audit event in the same transaction. The caller is
a :class:`~connectx.accounts.principal.Principal` (the CLI passes one with ``actor="operator"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import service as accounts
from connectx.accounts import sessions
from connectx.accounts.caller import Principal
from connectx.audit.service import record
from connectx.kit import clock
from connectx.kit.crypto import CryptoError
from connectx.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from connectx.kit.phones import to_e164
from connectx.models.account import User
from connectx.models.workspace import Membership, Workspace
from connectx.workspaces import repository as repo
from connectx.workspaces.access import ROLES, effective_role

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Person:
    """What a workspace shows of a member: decrypted only for the page or response."""

    user_id: int
    name: str
    email: str


@dataclass
class Member:
    id: int
    user_id: int
    role: str
    joined_at: datetime
    name: str
    email: str


def _text(value: str | None, field: str, label: str, max_len: int, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{label} is required.", field=field)
        return None
    if len(text) > max_len:
        raise InvalidInput(f"{label} is too long: keep it under {max_len} characters.", field=field)
    if _CONTROL.search(text.replace("\n", " ").replace("\r", " ").replace("\t", " ")):
        raise InvalidInput(f"{label} contains control characters.", field=field)
    return text


def _name(value: str | None) -> str:
    text = _text(value, "name", "Business name", 200, True)
    assert text is not None
    return " ".join(text.split())


def _address(value: str | None) -> str | None:
    return _text(value, "address", "Address", 500, False)


def _phone(value: str | None) -> str | None:
    text = (value or "").strip()
    return to_e164(text) if text else None


def _role(value: str) -> str:
    if value not in ROLES:
        raise InvalidInput(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    return value


def _audit(by: Principal, workspace_id: int | None) -> dict[str, Any]:
    return {"actor": by.actor, "ip": by.ip, "workspace_id": workspace_id}


# -- people -----------------------------------------------------------------------------------


async def person(db: AsyncSession, account: User) -> Person:
    """An account holder's name and e-mail, decrypted (or marked erased)."""
    try:
        name = await accounts.name_of(db, account)
        email = await accounts.email_of(db, account)
    except CryptoError:  # the account holder was erased (key destroyed)
        name, email = "(erased account)", ""
    return Person(account.id, name, email)


# -- workspaces -------------------------------------------------------------------------------


async def create_workspace(
    db: AsyncSession,
    by: Principal,
    *,
    owner_user_id: int,
    name: str,
    address: str | None = None,
    phone: str | None = None,
) -> Workspace:
    """Create a workspace with ``owner_user_id`` as its owner. A signed-in creator's session
    switches to it."""
    now = clock.now()
    ws = Workspace(
        name=_name(name),
        address=_address(address),
        phone=_phone(phone),
        created_at=now,
        updated_at=now,
    )
    if await repo.user(db, owner_user_id) is None:
        raise NotFound(f"No account {owner_user_id}.")
    await repo.add(db, ws)
    membership = Membership(workspace_id=ws.id, user_id=owner_user_id, role="owner", created_at=now)
    await repo.add(db, membership)
    await record(db, action="workspace.created", subject=f"workspace:{ws.id}", **_audit(by, ws.id))
    await record(
        db,
        action="member.added",
        subject=f"user:{owner_user_id}",
        data={"member_id": membership.id, "role": "owner"},
        **_audit(by, ws.id),
    )
    if by.session_id is not None and by.user_id == owner_user_id:
        await sessions.switch_workspace(db, by.session_id, ws.id)
        by.workspace_id, by.role = ws.id, "owner"
    return ws


async def current(db: AsyncSession, by: Principal) -> Workspace:
    if by.workspace_id is None:
        raise Forbidden("Choose or create a workspace first.")
    ws = await repo.workspace(db, by.workspace_id)
    if ws is None:
        raise NotFound("This workspace no longer exists.")
    return ws


async def update_profile(db: AsyncSession, by: Principal, changes: dict[str, Any]) -> Workspace:
    """Change the business name, address or phone (keys present in ``changes`` only)."""
    ws = await current(db, by)
    cleaners = {"name": _name, "address": _address, "phone": _phone}
    wanted = {f: clean(changes[f]) for f, clean in cleaners.items() if f in changes}  # all or none
    changed = [f for f, value in wanted.items() if value != getattr(ws, f)]
    for f in changed:
        setattr(ws, f, wanted[f])
    if changed:
        ws.updated_at = clock.now()
        await db.flush()
        await record(
            db,
            action="workspace.updated",
            subject=f"workspace:{ws.id}",
            data={"fields": changed},
            **_audit(by, ws.id),
        )
    return ws


async def workspaces_of(db: AsyncSession, user_id: int) -> list[tuple[Workspace, str]]:
    return await repo.workspaces_of_user(db, user_id)


async def switch(db: AsyncSession, by: Principal, workspace_id: int) -> Workspace:
    """Bind the caller's session to another workspace they belong to."""
    if by.user_id is None or by.session_id is None:
        raise Forbidden("Only a signed-in person switches workspaces; an API key has one.")
    membership = await repo.membership_of_user(db, workspace_id, by.user_id)
    ws = await repo.workspace(db, workspace_id) if membership else None
    if membership is None or ws is None:
        raise NotFound(f"No workspace {workspace_id} among yours.")
    await sessions.switch_workspace(db, by.session_id, ws.id)
    await record(db, action="session.workspace_switched", subject=by.actor, **_audit(by, ws.id))
    by.workspace_id, by.role = ws.id, membership.role
    return ws


# -- members ----------------------------------------------------------------------------------


async def list_members(db: AsyncSession, by: Principal) -> list[Member]:
    ws = await current(db, by)
    rows = await repo.members(db, ws.id)
    accounts = await repo.users(db, [m.user_id for m in rows])
    out = []
    for m in rows:
        who = await person(db, accounts[m.user_id])
        out.append(Member(m.id, m.user_id, m.role, m.created_at, who.name, who.email))
    await record(
        db,
        action="members.viewed",
        subject=f"workspace:{ws.id}",
        data={"count": len(out)},
        **_audit(by, ws.id),
    )
    return out


async def get_member(db: AsyncSession, by: Principal, member_id: int) -> Member:
    ws = await current(db, by)
    m = await repo.member(db, ws.id, member_id)
    account = await repo.user(db, m.user_id)
    assert account is not None
    who = await person(db, account)
    await record(
        db,
        action="member.viewed",
        subject=f"user:{m.user_id}",
        data={"member_id": m.id},
        **_audit(by, ws.id),
    )
    return Member(m.id, m.user_id, m.role, m.created_at, who.name, who.email)


def _may_touch(by: Principal, target_role: str, new_role: str | None = None) -> None:
    role = effective_role(by)
    if role not in ("owner", "admin"):
        raise Forbidden("Only a workspace owner or admin can manage members.")
    if role != "owner" and (target_role == "owner" or new_role == "owner"):
        raise Forbidden("Only an owner can grant, change or remove the owner role.")


async def _ensure_not_last_owner(db: AsyncSession, workspace_id: int, what: str) -> None:
    await repo.workspace(db, workspace_id, lock=True)  # serialise owner changes
    if await repo.count_owners(db, workspace_id) <= 1:
        raise Conflict(
            f"The last owner cannot be {what}: make another member an owner first.",
        )


async def change_role(db: AsyncSession, by: Principal, member_id: int, role: str) -> Membership:
    ws = await current(db, by)
    target = await repo.member(db, ws.id, member_id)
    new_role = _role(role)
    _may_touch(by, target.role, new_role)
    if target.role == new_role:
        return target
    if target.role == "owner":
        await _ensure_not_last_owner(db, ws.id, "demoted")
    old = target.role
    await repo.set_role(db, ws.id, target.id, new_role)
    await db.refresh(target)
    await record(
        db,
        action="member.role_changed",
        subject=f"user:{target.user_id}",
        data={"member_id": target.id, "from": old, "to": new_role},
        **_audit(by, ws.id),
    )
    return target


async def remove_member(db: AsyncSession, by: Principal, member_id: int) -> None:
    """Remove a member; their sessions bound to this workspace and the API keys they created
    here are revoked (effective on their next request)."""
    ws = await current(db, by)
    target = await repo.member(db, ws.id, member_id)
    _may_touch(by, target.role)
    if target.role == "owner":
        await _ensure_not_last_owner(db, ws.id, "removed")
    now = clock.now()
    user_id = target.user_id
    await repo.delete_member(db, target)
    revoked = await sessions.revoke_all(
        db,
        user_id,
        actor=by.actor,
        workspace_id=ws.id,
        ip=by.ip,
        reason="removed from the workspace",
    )
    keys = await repo.revoke_api_keys_of(db, ws.id, user_id, now)
    await record(
        db,
        action="member.removed",
        subject=f"user:{user_id}",
        data={"member_id": member_id, "sessions_revoked": revoked, "api_keys_revoked": keys},
        **_audit(by, ws.id),
    )


async def add_member(
    db: AsyncSession, by: Principal, workspace_id: int, user_id: int, role: str
) -> Membership:
    """Make ``user_id`` a member (invitation acceptance, the CLI, the demo seed)."""
    if await repo.membership_of_user(db, workspace_id, user_id) is not None:
        raise Conflict("This person is already a member of the workspace.")
    membership = Membership(
        workspace_id=workspace_id, user_id=user_id, role=_role(role), created_at=clock.now()
    )
    await repo.add(db, membership)
    await record(
        db,
        action="member.added",
        subject=f"user:{user_id}",
        data={"member_id": membership.id, "role": membership.role},
        **_audit(by, workspace_id),
    )
    return membership


# -- who is calling ---------------------------------------------------------------------------


async def whoami(db: AsyncSession, by: Principal) -> dict[str, Any]:
    """The caller (person or API key), their workspace and role: ``GET /api/v1/me``."""
    ws = await repo.workspace(db, by.workspace_id) if by.workspace_id is not None else None
    out: dict[str, Any] = {
        "kind": "api_key" if by.api_key_id is not None else "user",
        "user": None,
        "api_key": None,
        "workspace": {"id": ws.id, "name": ws.name} if ws else None,
        "role": by.role if ws else None,
        "scopes": list(by.scopes),
    }
    if by.api_key_id is not None and by.workspace_id is not None:
        key = await repo.api_key(db, by.workspace_id, by.api_key_id)
        out["api_key"] = {"id": key.id, "name": key.name, "scopes": list(key.scopes)}
    elif by.user_id is not None:
        account = await repo.user(db, by.user_id)
        if account is None:
            raise NotFound("This account no longer exists.")
        out["user"] = {"id": account.id, "name": (await person(db, account)).name}
    return out
