"""SQL of retention: expired rows per rule (minus legal holds), batches, overrides, holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from connectx.kit.errors import NotFound
from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.kit.upsert import insert_ignore
from connectx.models.retention import LegalHold, RetentionOverride, hold_covers
from connectx.retention.rules import ANONYMISE, Rule

# -- expiry -------------------------------------------------------------------------------------


def _held(rule: Rule) -> ColumnElement[bool] | None:
    """An active legal hold covers the row's workspace or subject."""
    if rule.workspace is None and rule.subject is None:
        return None
    return hold_covers(rule.workspace, rule.subject)


def expired(
    rule: Rule,
    cutoff: datetime,
    *,
    workspaces: Sequence[int] | None = None,
    except_workspaces: Sequence[int] = (),
) -> ColumnElement[bool]:
    """Rows of ``rule`` whose period (counted from its anchor) ended before ``cutoff``, that
    are finished, not yet anonymised, and not under a legal hold."""
    conditions = rule.ended_before(cutoff)
    if rule.ready is not None:
        conditions.append(rule.ready)
    pending = rule.pending()
    if pending is not None:
        conditions.append(pending)
    if workspaces is not None:
        assert rule.workspace is not None
        conditions.append(rule.workspace.in_(list(workspaces)))
    if except_workspaces:
        assert rule.workspace is not None
        conditions.append(rule.workspace.not_in(list(except_workspaces)))
    held = _held(rule)
    if held is not None:
        conditions.append(~held)
    return and_(*conditions)


def held_rows(rule: Rule, cutoff: datetime) -> ColumnElement[bool] | None:
    """Expired rows that a legal hold keeps (for the report)."""
    held = _held(rule)
    if held is None:
        return None
    conditions = [*rule.ended_before(cutoff), held]
    if rule.ready is not None:
        conditions.append(rule.ready)
    pending = rule.pending()
    if pending is not None:
        conditions.append(pending)
    return and_(*conditions)


async def count(db: AsyncSession, rule: Rule, where: ColumnElement[bool]) -> int:
    stmt = select(func.count()).select_from(rule.table).where(where)
    return int((await db.execute(stmt)).scalar_one())


async def take_batch(
    db: AsyncSession, rule: Rule, where: ColumnElement[bool], limit: int
) -> list[int]:
    """Ids of the next expired rows; on PostgreSQL rows locked by live work are skipped."""
    stmt = (
        select(rule.pk)
        .select_from(rule.table)
        .where(where)
        .order_by(rule.pk)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [int(v) for v in (await db.execute(stmt)).scalars()]


async def remove(db: AsyncSession, rule: Rule, ids: list[int]) -> int:
    """Delete or anonymise the rows ``ids``; returns how many changed."""
    if not ids:
        return 0
    if rule.action == ANONYMISE:
        stmt: Any = (
            update(rule.table)
            .where(rule.pk.in_(ids))
            .values({name: None for name in rule.columns})
            .execution_options(synchronize_session=False)
        )
    else:
        stmt = (
            delete(rule.table).where(rule.pk.in_(ids)).execution_options(synchronize_session=False)
        )
    result = await db.execute(stmt)
    return int(getattr(result, "rowcount", len(ids)) or 0)


# -- workspace periods ----------------------------------------------------------------------------


async def overrides_of_workspace(db: AsyncSession, workspace_id: int) -> dict[str, int]:
    rows = await db.execute(
        select(RetentionOverride.retention_class, RetentionOverride.days).where(
            RetentionOverride.workspace_id == workspace_id
        )
    )
    return {name: int(days) for name, days in rows.all()}


async def overrides_of_class(db: AsyncSession, retention_class: str) -> dict[int, int]:
    """Workspace id -> days, for every workspace that chose a period for the class."""
    rows = await db.execute(
        select(RetentionOverride.workspace_id, RetentionOverride.days).where(
            RetentionOverride.retention_class == retention_class
        )
    )
    return {int(ws): int(days) for ws, days in rows.all()}


async def set_override(
    db: AsyncSession, workspace_id: int, retention_class: str, days: int, by: str, at: datetime
) -> None:
    await db.execute(
        insert_ignore(
            db,
            RetentionOverride,
            {
                "workspace_id": workspace_id,
                "retention_class": retention_class,
                "days": days,
                "set_by": by,
                "set_at": at,
            },
        )
    )
    await db.execute(
        update(RetentionOverride)
        .where(
            RetentionOverride.workspace_id == workspace_id,
            RetentionOverride.retention_class == retention_class,
        )
        .values(days=days, set_by=by, set_at=at)
        .execution_options(synchronize_session=False)
    )


async def clear_override(db: AsyncSession, workspace_id: int, retention_class: str) -> None:
    await db.execute(
        delete(RetentionOverride).where(
            RetentionOverride.workspace_id == workspace_id,
            RetentionOverride.retention_class == retention_class,
        )
    )


# -- legal holds --------------------------------------------------------------------------------


async def add_hold(db: AsyncSession, hold: LegalHold) -> LegalHold:
    db.add(hold)
    await db.flush()
    return hold


async def hold(db: AsyncSession, hold_id: int) -> LegalHold | None:
    return await db.get(LegalHold, hold_id)


async def holds(db: AsyncSession, *, active_only: bool) -> list[LegalHold]:
    stmt = select(LegalHold).order_by(LegalHold.id)
    if active_only:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    return list((await db.execute(stmt)).scalars())


async def release_hold(db: AsyncSession, hold_id: int, by: str, at: datetime) -> bool:
    result = await db.execute(
        update(LegalHold)
        .where(LegalHold.id == hold_id, LegalHold.released_at.is_(None))
        .values(released_at=at, released_by=by)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def workspace_holds(
    db: AsyncSession, workspace_id: int, operator: str, *, active_only: bool
) -> list[LegalHold]:
    stmt = (
        scoped(LegalHold, workspace_id)
        .where(LegalHold.placed_by != operator)
        .order_by(LegalHold.id)
    )
    if active_only:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    return list((await db.execute(stmt)).scalars())


async def workspace_hold(
    db: AsyncSession, workspace_id: int, hold_id: int, operator: str
) -> LegalHold:
    hold = await get_in_workspace(db, LegalHold, hold_id, workspace_id, "legal hold")
    if hold.placed_by == operator:
        raise NotFound(f"No legal hold {hold_id} in this workspace.")
    return hold


async def contact_of_workspace(db: AsyncSession, workspace_id: int, contact_id: int) -> None:
    from connectx.models.contact import Contact

    await get_in_workspace(db, Contact, contact_id, workspace_id, "contact")


async def workspace_exists(db: AsyncSession, workspace_id: int) -> bool:
    from connectx.models.workspace import Workspace

    found = await db.execute(select(Workspace.id).where(Workspace.id == workspace_id))
    return found.scalar_one_or_none() is not None
