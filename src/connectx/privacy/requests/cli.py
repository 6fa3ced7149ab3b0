"""``connectx privacy requests``: the DPO's view of every request, the overdue list, and
decisions on requests to ConnectX itself (account holders, inquiries)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

requests_app = typer.Typer(help="Data-subject requests (policy §8).", no_args_is_help=True)
T = TypeVar("T")
OPERATOR = "operator"


def _run(work: Callable[[], Awaitable[T]]) -> T:
    from connectx.db.engine import dispose_engines

    async def main() -> T:
        try:
            return await work()
        finally:
            await dispose_engines()

    return asyncio.run(main())


def _line(view: object) -> str:
    from connectx.privacy.requests.service import RequestView

    assert isinstance(view, RequestView)
    where = f"workspace {view.workspace_id}" if view.workspace_id else "ConnectX"
    clock = view.clock.words if view.open else f"closed {view.closed_at:%Y-%m-%d}"
    return (
        f"{view.reference}  {view.kind:<13} {view.status:<11} {where:<16} "
        f"due {view.clock.due_at:%Y-%m-%d %H:%M}  {clock}"
    )


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@requests_app.command("list")
def list_requests(
    overdue: bool = typer.Option(False, "--overdue", help="Only open requests past due."),
    as_json: bool = typer.Option(False, "--json", help="JSON for programs."),
) -> None:
    """Open requests in every workspace and to ConnectX, soonest due first."""
    from connectx.db.session import unit_of_work
    from connectx.kit import clock
    from connectx.privacy.requests import repository as repo
    from connectx.privacy.requests import service

    async def work() -> list[service.RequestView]:
        async with unit_of_work() as db:
            rows = await (repo.overdue(db, clock.now()) if overdue else repo.all_open(db))
            return [service.summary(r) for r in rows]

    views = _run(work)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "reference": v.reference,
                        "kind": v.kind,
                        "status": v.status,
                        "workspace_id": v.workspace_id,
                        "due_at": v.clock.due_at.isoformat(),
                        "overdue": v.clock.overdue,
                    }
                    for v in views
                ],
                indent=2,
            )
        )
        return
    if not views:
        typer.echo("No overdue requests." if overdue else "No open requests.")
    for view in views:
        typer.echo(_line(view))


@requests_app.command("overdue")
def overdue_requests() -> None:
    """Open requests past their due date, in every workspace (the DPO's list)."""
    list_requests(overdue=True, as_json=False)


def _decide(reference: str, action: str, **kwargs: object) -> None:
    from connectx.db.session import unit_of_work
    from connectx.kit.errors import DomainError
    from connectx.privacy.requests import repository as repo
    from connectx.privacy.requests import service

    async def work() -> str:
        async with unit_of_work() as db:
            req = await repo.by_reference(db, reference.strip().upper())
            if req is None:
                raise DomainError(f"No request {reference}.")
            if action != "show" and req.workspace_id is not None:
                raise DomainError(
                    f"{req.reference} is a request to workspace {req.workspace_id}: its owners "
                    "and admins decide it, not ConnectX."
                )
            if action == "approve":
                await service.approve(db, req, actor=OPERATOR)
            elif action == "refuse":
                await service.refuse(db, req, actor=OPERATOR, reason=str(kwargs["reason"]))
            elif action == "extend":
                days = kwargs["days"]
                assert isinstance(days, int)
                await service.extend(
                    db, req, actor=OPERATOR, days=days, reason=str(kwargs["reason"])
                )
            elif action == "answer":
                await service.close_inquiry(db, req, actor=OPERATOR, answer=str(kwargs["answer"]))
            view = await service.detail(db, req)
            lines = [_line(view)]
            lines += [f"  {e.at:%Y-%m-%d %H:%M}  {e.action}  by {e.actor}" for e in view.events]
            return "\n".join(lines)

    try:
        typer.echo(_run(work))
    except DomainError as exc:
        _fail(exc.detail)


@requests_app.command("show")
def show(reference: str) -> None:
    """One request and its timeline."""
    _decide(reference, "show")


@requests_app.command("approve")
def approve(reference: str) -> None:
    """Approve and carry out a verified request to ConnectX."""
    _decide(reference, "approve")


@requests_app.command("refuse")
def refuse(reference: str, reason: str = typer.Option(..., help="Told to the person.")) -> None:
    """Refuse a request to ConnectX, with reasons (the person is told how to complain)."""
    _decide(reference, "refuse", reason=reason)


@requests_app.command("extend")
def extend(
    reference: str,
    days: int = typer.Option(..., help="1 to 30, once, before the due date."),
    reason: str = typer.Option(..., help="Told to the person."),
) -> None:
    """Extend a request to ConnectX once."""
    _decide(reference, "extend", days=days, reason=reason)


@requests_app.command("answer")
def answer(reference: str, text: str = typer.Option(..., "--text", help="The answer.")) -> None:
    """Answer an inquiry sent to the DPO and close it."""
    _decide(reference, "answer", answer=text)


def make_operator(
    email: str, remove: bool = typer.Option(False, "--remove", help="Take the role away.")
) -> None:
    """Let an account see and decide requests to ConnectX (/operator/requests)."""
    from connectx.accounts import service as accounts
    from connectx.audit import service as audit
    from connectx.db.session import unit_of_work
    from connectx.privacy.requests import repository as repo

    async def work() -> int | None:
        async with unit_of_work() as db:
            user = await accounts.find_user_by_email(db, accounts.normalise_email(email))
            if user is None:
                return None
            await repo.set_operator(db, user.id, not remove)
            await audit.record(
                db,
                actor=OPERATOR,
                action="account.operator_removed" if remove else "account.operator_granted",
                subject=f"user:{user.id}",
            )
            return user.id

    if _run(work) is None:
        _fail("No account has that e-mail address.")
    typer.echo("Operator role removed." if remove else "The account is now an operator.")
