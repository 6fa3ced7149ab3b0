"""The retention schedule in force: defaults (:mod:`connectx.privacy.retention_schedule`), the
operator's choices (``CONNECTX_RETENTION_DAYS``) and, for classes that allow it, a workspace's own
period within the bounds. Shown on the privacy pages, the workspace's retention page and the RoPA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.kit.inventory import Retention
from connectx.privacy.retention_schedule import SCHEDULE, Period, period_of
from connectx.retention import repository as repo


@dataclass(frozen=True)
class ClassPeriod:
    retention: Retention
    period: Period  # with the days in force for the caller (platform or workspace)
    platform_days: int | None  # the operator's (or default) period
    workspace_days: int | None  # the workspace's own choice, if any

    @property
    def name(self) -> str:
        return str(self.retention)

    @property
    def days(self) -> int | None:
        return self.period.days

    @property
    def workspace_may_set(self) -> bool:
        return self.period.workspace_override


def platform_schedule() -> list[ClassPeriod]:
    """Every class with the period the operator runs (no workspace choices)."""
    out = []
    for retention in sorted(SCHEDULE):
        period = period_of(retention)
        out.append(ClassPeriod(retention, period, period.days, None))
    return out


def page_context() -> dict[str, Any]:
    """What ``{% include "retention/_schedule.html" %}`` needs to show the schedule on a page
    (``render(request, "page.html", **page_context())``)."""
    return {"retention_items": platform_schedule()}


async def workspace_schedule(db: AsyncSession, workspace_id: int) -> list[ClassPeriod]:
    """Every class as it applies to one workspace's data."""
    chosen = await repo.overrides_of_workspace(db, workspace_id)
    out = []
    for item in platform_schedule():
        days = chosen.get(item.name) if item.workspace_may_set else None
        if days is None:
            out.append(item)
            continue
        from dataclasses import replace

        out.append(ClassPeriod(item.retention, replace(item.period, days=days), item.days, days))
    return out


def _retention(name: str) -> Retention:
    try:
        return Retention(name)
    except ValueError:
        raise InvalidInput(
            f"Unknown retention class {name!r}: use one of {', '.join(sorted(SCHEDULE))}.",
            field="retention_class",
        ) from None


async def set_workspace_period(
    db: AsyncSession, by: Principal, retention_class: str, days: int | None
) -> ClassPeriod:
    """A workspace manager sets (or, with ``None``, clears) the workspace's own period for a
    class that allows it, within its bounds. Audited (``retention.period_set``)."""
    assert by.workspace_id is not None
    retention = _retention(retention_class)
    period = period_of(retention)
    if not period.workspace_override:
        raise InvalidInput(
            f"The {retention} period is the same for every workspace and cannot be changed here.",
            field="retention_class",
        )
    if days is not None:
        assert period.min_days is not None and period.max_days is not None
        if not period.min_days <= days <= period.max_days:
            raise InvalidInput(
                f"Choose between {period.min_days} and {period.max_days} days "
                "(or clear the period to keep the default).",
                field="days",
            )
        await repo.set_override(db, by.workspace_id, str(retention), days, by.actor, clock.now())
    else:
        await repo.clear_override(db, by.workspace_id, str(retention))
    await audit.record(
        db,
        actor=by.actor,
        action="retention.period_set" if days is not None else "retention.period_cleared",
        workspace_id=by.workspace_id,
        ip=by.ip,
        data={"class": str(retention), "days": days},
    )
    for item in await workspace_schedule(db, by.workspace_id):
        if item.retention == retention:
            return item
    raise AssertionError("unreachable")
