"""Workspace API keys: ``cx_`` + 43 random characters, shown once, stored as a SHA-256 hash.

:mod:`connectx.accounts.principal` authenticates ``Authorization: Bearer cx_…`` against the hash
and records the last-used time (at most once a minute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import API_KEY_PREFIX, Principal
from connectx.audit.service import record
from connectx.kit import clock
from connectx.kit.crypto import random_token, token_hash
from connectx.kit.errors import Conflict, Forbidden, InvalidInput
from connectx.models.api_key import ApiKey
from connectx.workspaces import repository as repo
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import SCOPES, effective_role

PREFIX_LEN = 12  # "cx_" and 9 random characters: enough to tell keys apart, useless to guess
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class NewKey:
    key: ApiKey
    secret: str  # shown exactly once


def clean_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    chosen = [s.strip() for s in scopes if s and s.strip()]
    unknown = sorted(set(chosen) - set(SCOPES))
    if unknown:
        raise InvalidInput(
            f"Unknown scope {', '.join(unknown)}: choose from {', '.join(SCOPES)}.", field="scopes"
        )
    if not chosen:
        raise InvalidInput(f"Choose at least one scope ({', '.join(SCOPES)}).", field="scopes")
    return [s for s in SCOPES if s in chosen]


def _key_name(value: str) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise InvalidInput("Give the key a name, e.g. 'CRM sync'.", field="name")
    if len(text) > 100 or _CONTROL.search(text):
        raise InvalidInput("Key names are plain text under 100 characters.", field="name")
    return text


async def create(
    db: AsyncSession, by: Principal, *, name: str, scopes: list[str] | tuple[str, ...]
) -> NewKey:
    """Create a key in the caller's workspace (owners and admins, or an ``admin`` key)."""
    ws = await workspaces.current(db, by)
    if effective_role(by) not in ("owner", "admin"):
        raise Forbidden("Only a workspace owner or admin can create API keys.")
    creator = by.user_id
    if by.api_key_id is not None:  # a key made by a key belongs to the person behind it
        creator = await repo.api_key_creator(db, ws.id, by.api_key_id)
    secret = API_KEY_PREFIX + random_token(32)
    key = ApiKey(
        workspace_id=ws.id,
        name=_key_name(name),
        prefix=secret[:PREFIX_LEN],
        key_hash=token_hash(secret),
        scopes=clean_scopes(scopes),
        created_by=creator,
        created_at=clock.now(),
    )
    await repo.add(db, key)
    await record(
        db,
        action="api_key.created",
        subject=f"api_key:{key.id}",
        data={"scopes": key.scopes},
        actor=by.actor,
        ip=by.ip,
        workspace_id=ws.id,
    )
    return NewKey(key, secret)


async def list_keys(db: AsyncSession, by: Principal) -> list[ApiKey]:
    ws = await workspaces.current(db, by)
    return await repo.api_keys(db, ws.id)


async def get(db: AsyncSession, by: Principal, key_id: int) -> ApiKey:
    ws = await workspaces.current(db, by)
    return await repo.api_key(db, ws.id, key_id)


async def revoke(db: AsyncSession, by: Principal, key_id: int) -> ApiKey:
    ws = await workspaces.current(db, by)
    key = await repo.api_key(db, ws.id, key_id)
    if effective_role(by) not in ("owner", "admin"):
        raise Forbidden("Only a workspace owner or admin can revoke API keys.")
    if key.revoked_at is not None:
        raise Conflict("This API key is already revoked.")
    await repo.revoke_api_key(db, ws.id, key.id, clock.now())
    await db.refresh(key)
    await record(
        db,
        action="api_key.revoked",
        subject=f"api_key:{key.id}",
        actor=by.actor,
        ip=by.ip,
        workspace_id=ws.id,
    )
    return key
