"""Operator suspension of a workspace for a terms violation (policy §3 "enforce our terms").

A suspended workspace sends nothing and its inbound events are stored but not processed until
the suspension is lifted; people can still sign in and see the notice. Sending and intake
processing ask :func:`is_suspended` (or :func:`suspended_among` for a batch) before acting.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from connectx.kit.redaction import redact
from connectx.models.security import WorkspaceSuspension
from connectx.security import repository as repo

SUSPENDED = (
    "This workspace is suspended for a violation of the ConnectX terms, so it cannot send "
    "messages. Its owners were e-mailed the reason; contact support to resolve it."
)


async def is_suspended(db: AsyncSession, workspace_id: int) -> bool:
    """True while the operator's suspension of ``workspace_id`` is in force."""
    return await repo.active_suspension(db, workspace_id) is not None


async def suspended_among(db: AsyncSession, workspace_ids: set[int] | list[int]) -> set[int]:
    """Which of ``workspace_ids`` are suspended (one query, for batch processors)."""
    return await repo.suspended_among(db, workspace_ids)


async def ensure_can_send(db: AsyncSession, workspace_id: int) -> None:
    """Raise Forbidden for a suspended workspace (call before any outbound send)."""
    if await is_suspended(db, workspace_id):
        raise Forbidden(SUSPENDED, reason="workspace_suspended")


async def current(db: AsyncSession, workspace_id: int) -> WorkspaceSuspension | None:
    return await repo.active_suspension(db, workspace_id)


async def suspend(
    db: AsyncSession, workspace_id: int, *, reason: str, actor: str = "operator"
) -> WorkspaceSuspension:
    """Suspend a workspace, audited, and tell its owners why by e-mail."""
    workspace = await repo.workspace(db, workspace_id)
    if workspace is None:
        raise NotFound(f"There is no workspace {workspace_id}.")
    why = " ".join((reason or "").split())
    if not why:
        raise InvalidInput("Give the reason: which terms were broken, and how.", field="reason")
    if len(why) > 500:
        raise InvalidInput("Keep the reason under 500 characters.", field="reason")
    if await repo.active_suspension(db, workspace_id) is not None:
        raise Conflict(f"Workspace {workspace_id} is already suspended.")
    row = await repo.add_suspension(
        db,
        WorkspaceSuspension(
            workspace_id=workspace_id,
            reason=why,
            suspended_by=actor,
            suspended_at=clock.now(),
        ),
    )
    await audit.record(
        db,
        actor=actor,
        action="workspace.suspended",
        workspace_id=workspace_id,
        reason=redact(why)[:200],
        data={"suspension_id": row.id},
    )
    await _tell_owners(
        db,
        workspace_id,
        f"{workspace.name} is suspended on ConnectX",
        f"Your workspace {workspace.name} is suspended for a violation of the ConnectX terms "
        f"(section 3 of our privacy policy: enforcing our terms).\n\nReason: {why}\n\n"
        "While it is suspended it sends no messages. Messages your customers send are still "
        "received and kept, and are processed once the suspension is lifted. Reply to this "
        "e-mail or write to support to resolve it.\n",
    )
    return row


async def lift(db: AsyncSession, workspace_id: int, *, actor: str = "operator") -> None:
    workspace = await repo.workspace(db, workspace_id)
    if workspace is None:
        raise NotFound(f"There is no workspace {workspace_id}.")
    if not await repo.lift(db, workspace_id, actor, clock.now()):
        raise Conflict(f"Workspace {workspace_id} is not suspended.")
    await audit.record(
        db, actor=actor, action="workspace.suspension_lifted", workspace_id=workspace_id
    )
    await _tell_owners(
        db,
        workspace_id,
        f"{workspace.name} is active again on ConnectX",
        f"The suspension of your workspace {workspace.name} is lifted. Sending works again, "
        "and messages received meanwhile are being processed.\n",
    )


async def _tell_owners(db: AsyncSession, workspace_id: int, subject: str, body: str) -> None:
    from connectx.mail import service as mail
    from connectx.security.service import _person

    for owner_id in await repo.owners_of(db, workspace_id):
        person = await _person(db, owner_id)
        if person is None:
            continue
        await mail.send(
            db,
            to=person[0],
            subject=subject,
            body=f"Hello {person[1]},\n\n{body}",
            kind="workspace_suspension",
            subject_ref=f"user:{owner_id}",
            user_id=owner_id,
        )
