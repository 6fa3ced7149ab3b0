"""``connectx mail``: the operator reads the outbox (mail kept locally when SMTP is not set)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import typer

from connectx.audit import service as audit
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.kit.crypto import KeyDestroyed
from connectx.mail import repository as repo
from connectx.mail.service import OpenMail, open_message

app = typer.Typer(help="The mail outbox.", no_args_is_help=True)

T = TypeVar("T")

STATUSES = ("queued", "local", "sent", "failed", "erased")


def _run(work: Awaitable[T]) -> T:
    async def main() -> T:
        try:
            return await work
        finally:
            await dispose_engines()

    return asyncio.run(main())


async def _list(status: str | None, limit: int) -> list[tuple[int, str, str, str, int, str, str]]:
    rows: list[tuple[int, str, str, str, int, str, str]] = []
    async with unit_of_work() as db:
        for message in await repo.latest(db, limit=limit, status=status):
            try:
                opened = await open_message(db, message)
                to, subject = opened.to, opened.subject
            except KeyDestroyed:
                to, subject = "(erased)", "(erased)"
            rows.append(
                (
                    message.id,
                    message.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    message.status,
                    message.kind,
                    message.attempts,
                    to,
                    subject,
                )
            )
        if rows:
            await audit.record(
                db,
                actor="operator",
                action="mail.outbox_listed",
                data={"mail_ids": [r[0] for r in rows]},
            )
    return rows


async def _show(mail_id: int) -> OpenMail | None:
    async with unit_of_work() as db:
        message = await repo.get(db, mail_id)
        if message is None:
            return None
        opened = await open_message(db, message)
        await audit.record(
            db,
            actor="operator",
            action="mail.viewed",
            subject=message.subject,
            data={"mail_id": mail_id},
        )
    return opened


@app.command("list")
def list_mail(
    status: str | None = typer.Option(
        None, help="Only messages with this status: queued, local, sent, failed or erased."
    ),
    limit: int = typer.Option(20, min=1, max=1000, help="How many of the newest messages."),
) -> None:
    """List the newest messages, newest first (reading them is recorded in the audit log)."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            f"unknown status {status!r}; use one of {', '.join(STATUSES)}", param_hint="--status"
        )
    rows = _run(_list(status, limit))
    if not rows:
        typer.echo("The outbox is empty." if status is None else f"No {status} messages.")
        return
    typer.echo(f"{'ID':>6}  {'CREATED (UTC)':19}  {'STATUS':7}  {'KIND':18}  TO / SUBJECT")
    for mail_id, created, st, kind, _attempts, to, subject in rows:
        typer.echo(f"{mail_id:>6}  {created:19}  {st:7}  {kind:18}  {to} / {subject}")


@app.command("show")
def show_mail(
    mail_id: int = typer.Argument(..., help="The message id (from `mail list`)."),
) -> None:
    """Print one message: recipient, subject and body (recorded in the audit log)."""
    try:
        opened = _run(_show(mail_id))
    except KeyDestroyed:
        typer.echo(f"Message {mail_id} can no longer be read: its subject was erased.", err=True)
        raise typer.Exit(1) from None
    if opened is None:
        typer.echo(f"No message {mail_id}; `connectx mail list` shows the ids.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Id:      {opened.id}")
    typer.echo(f"Kind:    {opened.kind}")
    typer.echo(f"Status:  {opened.status}")
    typer.echo(f"To:      {opened.to}")
    typer.echo(f"Subject: {opened.subject}")
    typer.echo("")
    typer.echo(opened.body)
