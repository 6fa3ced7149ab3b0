"""Canned responses: the workspace's saved replies, inserted in the composer by ``/shortcut``.

They are the business's own wording (not about any customer); owners and admins manage them,
every answering member reads them.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.inbox import CannedResponse
from connectx.privacy.pan import contains_pan

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_BODY = 4096


def normalise_shortcut(raw: str) -> str:
    shortcut = raw.strip().lstrip("/").lower()
    if not SHORTCUT.match(shortcut):
        raise InvalidInput(
            "A shortcut is 1 to 32 lowercase letters, digits, '-' or '_' (typed as /shortcut).",
            field="shortcut",
        )
    return shortcut


def _title(raw: str) -> str:
    title = " ".join(raw.split())
    if not 1 <= len(title) <= 120:
        raise InvalidInput("A title has 1 to 120 characters.", field="title")
    return title


def _body(raw: str) -> str:
    body = raw.strip()
    if not 1 <= len(body) <= MAX_BODY:
        raise InvalidInput(f"The text has 1 to {MAX_BODY} characters.", field="body")
    if contains_pan(body):
        raise InvalidInput("A saved reply must not contain a card number.", field="body")
    return body


async def _audit(db: AsyncSession, principal: Principal, action: str, canned_id: int) -> None:
    await audit.record(
        db,
        actor=principal.actor,
        action=action,
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"canned_response": canned_id},
    )


async def create(
    db: AsyncSession, principal: Principal, shortcut: str, title: str, body: str
) -> CannedResponse:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    shortcut = normalise_shortcut(shortcut)
    if await repo.canned_by_shortcut(db, ws, shortcut) is not None:
        raise Conflict(f"/{shortcut} is taken; choose another shortcut.", field="shortcut")
    now = clock.now()
    item = CannedResponse(
        workspace_id=ws,
        shortcut=shortcut,
        title=_title(title),
        body=_body(body),
        created_by=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    try:
        async with db.begin_nested():
            await repo.add(db, item)
    except IntegrityError:
        raise Conflict(
            f"/{shortcut} is taken; choose another shortcut.", field="shortcut"
        ) from None
    await _audit(db, principal, "inbox.canned_created", item.id)
    return item


async def update(
    db: AsyncSession,
    principal: Principal,
    canned_id: int,
    *,
    shortcut: str | None,
    title: str | None,
    body: str | None,
) -> CannedResponse:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    item = await repo.canned(db, ws, canned_id)
    if shortcut is not None:
        shortcut = normalise_shortcut(shortcut)
        other = await repo.canned_by_shortcut(db, ws, shortcut)
        if other is not None and other.id != item.id:
            raise Conflict(f"/{shortcut} is taken; choose another shortcut.", field="shortcut")
        item.shortcut = shortcut
    if title is not None:
        item.title = _title(title)
    if body is not None:
        item.body = _body(body)
    item.updated_at = clock.now()
    await db.flush()
    await _audit(db, principal, "inbox.canned_changed", item.id)
    return item


async def delete(db: AsyncSession, principal: Principal, canned_id: int) -> None:
    assert principal.workspace_id is not None
    item = await repo.canned(db, principal.workspace_id, canned_id)
    await repo.remove(db, item)
    await _audit(db, principal, "inbox.canned_deleted", canned_id)


async def search(db: AsyncSession, workspace_id: int, prefix: str | None) -> list[CannedResponse]:
    """The composer's ``/gre…``: responses whose shortcut starts with ``prefix``."""
    wanted = prefix.strip().lstrip("/").lower() if prefix else None
    return await repo.canned_list(db, workspace_id, wanted or None)


async def get(db: AsyncSession, workspace_id: int, canned_id: int) -> CannedResponse:
    return await repo.canned(db, workspace_id, canned_id)
