"""Retention runs and legal holds.

:func:`run` walks every rule (:mod:`connectx.retention.rules`), finds rows whose period has ended
(per the schedule in force, per workspace where a workspace chose its own), skips rows under an
active legal hold, and deletes or anonymises the rest in small batches, each its own short
transaction with an audit event that holds counts only (``retention.deleted`` /
``retention.anonymised``). Live traffic waits at most one batch for the database. A dry run only
counts. A run can stop at a deadline (the job's lease) and be continued: every step is idempotent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.privacy.retention_schedule import period_of
from connectx.retention import day_keys
from connectx.retention import repository as repo
from connectx.retention.ledgers import LEDGERS, Ledger
from connectx.retention.rules import ANONYMISE, DELETE, Rule, rules

Progress = Callable[[str, int, int], None]  # rule name, rows done, rows expected

# What a run does after the row rules, in order: the day keys of raw webhooks whose rows the
# rules just deleted, then the append-only tables (the audit log last).
STEPS: tuple[Ledger, ...] = (day_keys.STEP, *LEDGERS)


@dataclass(frozen=True)
class _Group:
    cutoff: datetime
    workspaces: tuple[int, ...] | None = None
    except_workspaces: tuple[int, ...] = ()
    workspace_id: int | None = None  # for the audit event, when the group is one workspace


@dataclass
class RuleReport:
    rule: str
    retention: str
    action: str
    expired: int = 0  # found (dry run) or removed (real run)
    held: int = 0  # expired but kept by a legal hold
    batches: int = 0
    note: str | None = None


@dataclass
class RunReport:
    dry_run: bool
    started_at: datetime
    complete: bool = True
    rules: list[RuleReport] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return 0 if self.dry_run else sum(r.expired for r in self.rules)

    @property
    def held(self) -> int:
        return sum(r.held for r in self.rules)


async def _groups(rule: Rule) -> list[_Group]:
    now = clock.now()
    period = period_of(rule.retention)
    groups: list[_Group] = []
    chosen: dict[int, int] = {}
    if period.workspace_override and rule.workspace is not None:
        async with unit_of_work() as db:
            chosen = await repo.overrides_of_class(db, str(rule.retention))
        for workspace_id, days in sorted(chosen.items()):
            groups.append(
                _Group(now - timedelta(days=days), (workspace_id,), workspace_id=workspace_id)
            )
    if period.days is not None:
        groups.append(_Group(now - timedelta(days=period.days), None, tuple(sorted(chosen))))
    return groups


def _where(rule: Rule, group: _Group) -> Any:
    return repo.expired(
        rule,
        group.cutoff,
        workspaces=group.workspaces,
        except_workspaces=group.except_workspaces,
    )


async def count_expired(rule: Rule) -> tuple[int, int]:
    """(rows due now, rows due but held) for one rule."""
    due = held = 0
    for group in await _groups(rule):
        async with unit_of_work() as db:
            due += await repo.count(db, rule, _where(rule, group))
            holding = repo.held_rows(rule, group.cutoff)
            if holding is not None and group.workspaces is None and not group.except_workspaces:
                held += await repo.count(db, rule, holding)
            elif holding is not None:
                held += await repo.count(db, rule, _scoped(rule, group, holding))
    return due, held


def _scoped(rule: Rule, group: _Group, condition: Any) -> Any:
    from sqlalchemy import and_

    assert rule.workspace is not None
    parts = [condition]
    if group.workspaces is not None:
        parts.append(rule.workspace.in_(list(group.workspaces)))
    if group.except_workspaces:
        parts.append(rule.workspace.not_in(list(group.except_workspaces)))
    return and_(*parts)


async def _remove_group(
    rule: Rule,
    group: _Group,
    report: RuleReport,
    *,
    actor: str,
    expected: int,
    progress: Progress | None,
    deadline: float | None,
) -> bool:
    """Batches until the group is done; False when the deadline stopped it."""
    settings = get_settings()
    batch = max(1, settings.retention_batch_size)
    where = _where(rule, group)
    action = "retention.anonymised" if rule.action == ANONYMISE else "retention.deleted"
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        async with unit_of_work() as db:
            ids = await repo.take_batch(db, rule, where, batch)
            if not ids:
                return True
            extra = await rule.before_batch(db, ids) if rule.before_batch is not None else {}
            changed = await repo.remove(db, rule, ids)
            if rule.after_batch is not None:
                extra.update(await rule.after_batch(db, ids))
            await audit.record(
                db,
                actor=actor,
                action=action,
                workspace_id=group.workspace_id,
                data={
                    "rule": rule.name,
                    "table": rule.table.name,
                    "class": str(rule.retention),
                    "count": changed,
                    **extra,
                },
            )
        report.expired += changed
        report.batches += 1
        if progress is not None:
            progress(rule.name, report.expired, max(expected, report.expired))
        if len(ids) < batch:
            return True
        await asyncio.sleep(settings.retention_pause_s)


async def run(
    *,
    dry_run: bool = False,
    only: Sequence[str] | None = None,
    progress: Progress | None = None,
    deadline: float | None = None,
    actor: str = "system",
) -> RunReport:
    """Apply the schedule once. ``deadline`` is a ``time.monotonic()`` value: the run stops
    between batches when it passes and reports ``complete=False`` (run it again to go on)."""
    report = RunReport(dry_run=dry_run, started_at=clock.now())
    for rule in rules():
        if only and rule.name not in only:
            continue
        item = RuleReport(rule.name, str(rule.retention), rule.action)
        report.rules.append(item)
        groups = await _groups(rule)
        if not groups:
            item.note = "kept while the data's owner exists"
            continue
        due, item.held = await count_expired(rule)
        if dry_run:
            item.expired = due
            if progress is not None:
                progress(rule.name, due, due)
            continue
        if progress is not None:
            progress(rule.name, 0, due)
        for group in groups:
            done = await _remove_group(
                rule,
                group,
                item,
                actor=actor,
                expected=due,
                progress=progress,
                deadline=deadline,
            )
            if not done:
                report.complete = False
                item.note = "stopped at the deadline; the next run continues"
                break
        if not report.complete:
            break
    for ledger in STEPS:
        if not report.complete:
            break
        if only and ledger.name not in only:
            continue
        item = RuleReport(ledger.name, str(ledger.retention), DELETE)
        report.rules.append(item)
        report.complete = await _prune_ledger(
            ledger, item, dry_run=dry_run, actor=actor, progress=progress, deadline=deadline
        )
    if not dry_run:
        async with unit_of_work() as db:
            await audit.record(
                db,
                actor=actor,
                action="retention.run",
                data={
                    "complete": report.complete,
                    "removed": report.removed,
                    "held": report.held,
                    "rules": {r.rule: r.expired for r in report.rules if r.expired},
                },
            )
    return report


def rule_names() -> list[str]:
    """Every rule a run applies, in order (``--rule`` takes these)."""
    return [r.name for r in rules()] + [step.name for step in STEPS]


async def _prune_ledger(
    ledger: Ledger,
    item: RuleReport,
    *,
    dry_run: bool,
    actor: str,
    progress: Progress | None,
    deadline: float | None,
) -> bool:
    """Prune an append-only table (:mod:`connectx.retention.ledgers`) or destroy expired day keys
    (:mod:`connectx.retention.day_keys`); False when the deadline stopped it."""
    settings = get_settings()
    days = period_of(ledger.retention).days
    assert days is not None
    cutoff = clock.now() - timedelta(days=days)
    due, item.held = await ledger.count(cutoff)
    if dry_run:
        item.expired = due
        if progress is not None:
            progress(ledger.name, due, due)
        return True
    if progress is not None:
        progress(ledger.name, 0, due)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            item.note = "stopped at the deadline; the next run continues"
            return False
        removed = await ledger.prune(cutoff, max(1, settings.retention_batch_size), actor)
        if not removed:
            return True
        item.expired += removed
        item.batches += 1
        if progress is not None:
            progress(ledger.name, item.expired, max(due, item.expired))
        await asyncio.sleep(settings.retention_pause_s)
