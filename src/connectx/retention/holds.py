"""Legal holds: while one is active, retention deletes and anonymises nothing it covers.

The operator holds any workspace or subject (``connectx retention hold``); a workspace's owners
and admins hold their whole workspace or one of its contacts (the API and the workspace's
retention page), and see and release only the holds placed that way. Placing and releasing are
audited; holds are never deleted.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput, NotFound
from connectx.kit.redaction import redact
from connectx.models.retention import LegalHold
from connectx.retention import repository as repo

OPERATOR = "operator"
_SUBJECT = re.compile(r"^(user|contact|invitation):[1-9][0-9]{0,17}$")


def _reason(reason: str | None) -> str:
    why = redact(reason or "").strip()[:200]
    if not why:
        raise InvalidInput(
            "Give the reason for the hold (a case or request reference).", field="reason"
        )
    return why


async def _add(
    db: AsyncSession,
    *,
    workspace_id: int | None,
    subject: str | None,
    reason: str,
    actor: str,
    ip: str | None = None,
) -> LegalHold:
    why = _reason(reason)
    hold = await repo.add_hold(
        db,
        LegalHold(
            workspace_id=workspace_id,
            subject=subject,
            reason=why,
            placed_by=actor,
            placed_at=clock.now(),
        ),
    )
    await audit.record(
        db,
        actor=actor,
        action="legal_hold.placed",
        workspace_id=workspace_id,
        subject=subject,
        ip=ip,
        reason=why,
        data={"hold_id": hold.id},
    )
    return hold


async def _release(
    db: AsyncSession, hold: LegalHold, actor: str, ip: str | None = None
) -> LegalHold:
    if not await repo.release_hold(db, hold.id, actor, clock.now()):
        raise Conflict(f"Legal hold {hold.id} was already released.")
    await db.refresh(hold)
    await audit.record(
        db,
        actor=actor,
        action="legal_hold.released",
        workspace_id=hold.workspace_id,
        subject=hold.subject,
        ip=ip,
        data={"hold_id": hold.id},
    )
    return hold


# -- the operator (CLI) ---------------------------------------------------------------------------


async def place_hold(
    db: AsyncSession,
    *,
    workspace_id: int | None = None,
    subject: str | None = None,
    reason: str,
    actor: str = OPERATOR,
) -> LegalHold:
    """Stop retention from touching a workspace's or a subject's data until released."""
    if (workspace_id is None) == (subject is None):
        raise InvalidInput("Name either a workspace or a subject (like user:12) to hold.")
    if subject is not None:
        subject = subject.strip()
        if not _SUBJECT.match(subject):
            raise InvalidInput(
                "A subject is an id like user:12, contact:5 or invitation:3.", field="subject"
            )
    if workspace_id is not None and not await repo.workspace_exists(db, workspace_id):
        raise NotFound(f"There is no workspace {workspace_id}.")
    return await _add(db, workspace_id=workspace_id, subject=subject, reason=reason, actor=actor)


async def release_hold(db: AsyncSession, hold_id: int, *, actor: str = OPERATOR) -> LegalHold:
    hold = await repo.hold(db, hold_id)
    if hold is None:
        raise NotFound(f"There is no legal hold {hold_id}.")
    return await _release(db, hold, actor)


async def list_holds(db: AsyncSession, *, active_only: bool = True) -> list[LegalHold]:
    return await repo.holds(db, active_only=active_only)


# -- a workspace's owners and admins ---------------------------------------------------------------


async def place_workspace_hold(
    db: AsyncSession, by: Principal, *, contact_id: int | None, reason: str
) -> LegalHold:
    """Hold the caller's workspace (``contact_id`` None) or one of its contacts."""
    assert by.workspace_id is not None
    subject = None
    if contact_id is not None:
        await repo.contact_of_workspace(db, by.workspace_id, contact_id)
        subject = f"contact:{contact_id}"
    return await _add(
        db,
        workspace_id=by.workspace_id,
        subject=subject,
        reason=reason,
        actor=by.actor,
        ip=by.ip,
    )


async def workspace_holds(
    db: AsyncSession, by: Principal, *, active_only: bool = True
) -> list[LegalHold]:
    """The holds placed through the workspace (not the operator's), oldest first."""
    assert by.workspace_id is not None
    return await repo.workspace_holds(db, by.workspace_id, OPERATOR, active_only=active_only)


async def release_workspace_hold(db: AsyncSession, by: Principal, hold_id: int) -> LegalHold:
    """Release a hold placed through the workspace; the operator's are not the workspace's to
    release (404, as for a hold that does not exist)."""
    assert by.workspace_id is not None
    hold = await repo.workspace_hold(db, by.workspace_id, hold_id, OPERATOR)
    return await _release(db, hold, by.actor, by.ip)
