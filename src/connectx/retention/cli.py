"""``connectx retention``: run the schedule (with a progress bar), show it, and legal holds."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

retention_app = typer.Typer(
    help="Retention: delete or anonymise expired data; legal holds.", no_args_is_help=True
)
hold_app = typer.Typer(help="Legal holds: keep a workspace's or a subject's data.")
retention_app.add_typer(hold_app, name="hold")

T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    from connectx.db import errors
    from connectx.db.engine import dispose_engines
    from connectx.kit.errors import DomainError

    async def main() -> T:
        try:
            return await work()
        finally:
            await dispose_engines()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.secho(f"error: {errors.describe(exc)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.secho(f"error: {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


class _Bars:
    """One progress bar per rule, on stderr."""

    def __init__(self) -> None:
        self.rule: str | None = None
        self.bar: Any = None
        self.shown = 0

    def __call__(self, rule: str, done: int, total: int) -> None:
        if rule != self.rule:
            self.close()
            self.rule = rule
            self.shown = 0
            self.bar = typer.progressbar(
                length=max(total, 1), label=f"{rule:<18}", file=sys.stderr, show_pos=True
            )
            self.bar.__enter__()
        if self.bar is not None:
            if total > self.bar.length:
                self.bar.length = total
            step = done - self.shown
            if step > 0:
                self.bar.update(step)
                self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@retention_app.command("run")
def run_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be removed."),
    rule: list[str] = typer.Option([], "--rule", help="Only these rules (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Delete or anonymise every row whose retention period has ended (legal holds excepted),
    in small audited batches."""
    from connectx.retention import service

    known = set(service.rule_names())
    unknown = [name for name in rule if name not in known]
    if unknown:
        typer.secho(
            f"error: unknown rule {', '.join(unknown)}; rules: {', '.join(sorted(known))}",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(2)
    bars = _Bars() if progress and not dry_run else None
    try:
        report = _run(lambda: service.run(dry_run=dry_run, only=rule or None, progress=bars))
    finally:
        if bars is not None:
            bars.close()
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{'rule':<18} {'class':<18} {'action':<10} {verb:>12} {'held':>6}")
    for item in report.rules:
        line = (
            f"{item.rule:<18} {item.retention:<18} {item.action:<10} "
            f"{item.expired:>12} {item.held:>6}"
        )
        if item.note:
            line += f"  ({item.note})"
        typer.echo(line)
    total = sum(r.expired for r in report.rules)
    typer.echo(
        f"{'dry run: ' if dry_run else ''}{total} rows {verb}, {report.held} kept by legal holds"
        + ("" if report.complete else "; stopped early, run again to continue")
    )


@retention_app.command("schedule")
def schedule_command() -> None:
    """Print the retention schedule in force (defaults and CONNECTX_RETENTION_DAYS)."""
    from connectx.retention.schedule import platform_schedule

    try:
        items = platform_schedule()
    except ValueError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    for item in items:
        bounds = (
            f" [{item.period.min_days}-{item.period.max_days} days"
            + (", workspaces may choose" if item.workspace_may_set else "")
            + "]"
            if item.period.adjustable
            else ""
        )
        typer.echo(f"{item.name:<20} {item.period.describe()}{bounds}")


@hold_app.command("place")
def hold_place(
    reason: str = typer.Option(..., "--reason", help="Why (a case or request reference)."),
    workspace: int | None = typer.Option(None, "--workspace", help="Hold a workspace's data."),
    subject: str | None = typer.Option(None, "--subject", help="Hold a subject: user:12, ..."),
) -> None:
    """Place a legal hold: retention skips the workspace's or subject's data until released."""
    from connectx.db.session import unit_of_work
    from connectx.retention import holds

    async def work() -> int:
        async with unit_of_work() as db:
            hold = await holds.place_hold(
                db, workspace_id=workspace, subject=subject, reason=reason
            )
            return hold.id

    hold_id = _run(work)
    what = f"workspace {workspace}" if workspace is not None else subject
    typer.echo(f"legal hold {hold_id} placed on {what}")


@hold_app.command("release")
def hold_release(hold_id: int = typer.Argument(..., help="The hold's id.")) -> None:
    """Release a legal hold; retention applies again from the next run."""
    from connectx.db.session import unit_of_work
    from connectx.retention import holds

    async def work() -> None:
        async with unit_of_work() as db:
            await holds.release_hold(db, hold_id)

    _run(work)
    typer.echo(f"legal hold {hold_id} released")


@hold_app.command("list")
def hold_list(
    all_holds: bool = typer.Option(False, "--all", help="Released holds too."),
) -> None:
    """List legal holds."""
    from connectx.db.session import unit_of_work
    from connectx.retention import holds

    async def work() -> list[Any]:
        async with unit_of_work() as db:
            return list(await holds.list_holds(db, active_only=not all_holds))

    found = _run(work)
    if not found:
        typer.echo("no legal holds" if all_holds else "no active legal holds")
    for h in found:
        what = h.subject or f"workspace {h.workspace_id}"
        state = f"released {h.released_at:%Y-%m-%d}" if h.released_at else "active"
        typer.echo(f"{h.id:>5}  {what:<20} {state:<20} placed {h.placed_at:%Y-%m-%d}  {h.reason}")
