"""JSON API of retention: the platform schedule, and a workspace's own periods."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.retention import schedule
from connectx.retention.schemas import PeriodIn, PeriodOut
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
