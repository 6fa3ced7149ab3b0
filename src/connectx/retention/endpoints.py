"""JSON API of retention: the platform schedule, a workspace's own periods and its legal holds."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.retention import holds, schedule
from connectx.retention.schemas import HoldIn, HoldOut, PeriodIn, PeriodOut
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(prefix="/api/v1", tags=["retention"], dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")

reader = allow("read")
manager = allow("admin", *MANAGERS)


@router.get("/retention/schedule", response_model=list[PeriodOut], summary="Retention schedule")
async def platform_schedule() -> list[PeriodOut]:
    """How long each class of data is kept on this platform (policy §6)."""
    return [PeriodOut.of(item) for item in schedule.platform_schedule()]


@router.get(
    "/workspace/retention", response_model=list[PeriodOut], summary="This workspace's schedule"
)
async def workspace_schedule(
    principal: Principal = Depends(reader), db: AsyncSession = DB
) -> list[PeriodOut]:
    """The schedule as it applies to the current workspace's data."""
    assert principal.workspace_id is not None
    return [PeriodOut.of(i) for i in await schedule.workspace_schedule(db, principal.workspace_id)]


@router.put(
    "/workspace/retention/{retention_class}",
    response_model=PeriodOut,
    summary="Set this workspace's period for a class",
)
async def set_period(
    retention_class: str,
    body: PeriodIn,
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> PeriodOut:
    """Owners and admins (or an ``admin`` API key) choose a period within the class's bounds
    for the classes that allow it (``workspace_may_set``); ``null`` restores the default."""
    return PeriodOut.of(
        await schedule.set_workspace_period(db, principal, retention_class, body.days)
    )


@router.get(
    "/workspace/legal-holds", response_model=list[HoldOut], summary="This workspace's legal holds"
)
async def list_holds(
    all_holds: bool = Query(False, alias="all", description="Released holds too"),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> list[HoldOut]:
    """Holds owners and admins placed on the workspace or its contacts, oldest first. While one
    is active, retention deletes and anonymises nothing it covers."""
    found = await holds.workspace_holds(db, principal, active_only=not all_holds)
    return [HoldOut.of(h) for h in found]


@router.post(
    "/workspace/legal-holds",
    response_model=HoldOut,
    status_code=201,
    summary="Place a legal hold on this workspace or one of its contacts",
)
async def place_hold(
    body: HoldIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> HoldOut:
    """Audited (``legal_hold.placed``, the reason with identifying details masked)."""
    hold = await holds.place_workspace_hold(
        db, principal, contact_id=body.contact_id, reason=body.reason
    )
    return HoldOut.of(hold)


@router.post(
    "/workspace/legal-holds/{hold_id}/release",
    response_model=HoldOut,
    summary="Release a legal hold",
)
async def release_hold(
    hold_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> HoldOut:
    """Retention applies again from the next run. Audited (``legal_hold.released``); a hold
    released already answers 409."""
    return HoldOut.of(await holds.release_workspace_hold(db, principal, hold_id))
