"""``connectx privacy``, ``connectx keys`` and ``connectx audit``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

import typer

privacy_app = typer.Typer(help="Privacy: record of processing, requests.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)

T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work on a fresh loop and close its database connections afterwards."""
    from connectx.db.engine import dispose_engines

    async def main() -> T:
        try:
            return await work()
        finally:
            await dispose_engines()

    return asyncio.run(main())


class Format(StrEnum):
    markdown = "markdown"
    json = "json"


@privacy_app.command()
def ropa(
    format: Format = typer.Option(Format.markdown, "--format", "-f", help="markdown or json."),
) -> None:
    """Print the record of processing, generated from the data inventory."""
    from connectx.privacy import ropa as record

    doc = record.build()
    if format is Format.json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(record.render_markdown(doc))


recipients_app = typer.Typer(
    help="Where registry recipients take data-subject notices (GDPR art. 19).",
    no_args_is_help=True,
)
privacy_app.add_typer(recipients_app, name="recipients")


@recipients_app.command("set")
def recipients_set(
    recipient: str = typer.Argument(..., help="A registry id (connectx privacy ropa)."),
    webhook: str | None = typer.Option(None, "--webhook", help="HTTPS URL taking signed POSTs."),
    secret_file: typer.FileText | None = typer.Option(
        None, "--secret-file", help="File holding the shared HMAC secret ('-' for stdin)."
    ),
    email: str | None = typer.Option(None, "--email", help="The recipient's privacy address."),
) -> None:
    """Set a recipient's endpoint: a webhook with its shared secret, or an e-mail address."""
    from connectx.db.session import unit_of_work
    from connectx.kit.errors import DomainError
    from connectx.privacy.rights import notices

    secret = secret_file.read().strip() if secret_file is not None else None

    async def work() -> None:
        async with unit_of_work() as db:
            await notices.set_endpoint(
                db, recipient, webhook_url=webhook, secret=secret, email=email
            )

    try:
        _run(work)
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{recipient}: notices go to {'the webhook' if webhook else email}")


@recipients_app.command("list")
def recipients_list() -> None:
    """Every registry recipient and where its notices go (secrets are never shown)."""
    from connectx.db.session import unit_of_work
    from connectx.privacy.processors import REGISTRY
    from connectx.privacy.rights import repository

    async def work() -> dict[str, str]:
        async with unit_of_work() as db:
            rows = await repository.recipient_endpoints(db)
        return {r.recipient_id: r.webhook_url or r.email or "" for r in rows}

    where = _run(work)
    for r in REGISTRY:
        typer.echo(f"{r.id:20} {where.get(r.id) or '(no endpoint: tell them by other means)'}")


@keys_app.command()
def rotate(
    master: bool = typer.Option(True, "--master/--no-master", help="Rotate the master key."),
    scopes: bool = typer.Option(
        True, "--scopes/--no-scopes", help="Rotate every workspace's and the platform's key."
    ),
) -> None:
    """Rotate keys without downtime: the master key (re-wrapping every key it wraps) and the
    scope keys (re-wrapping every subject key). Reads keep working throughout."""
    from connectx.audit import service as audit
    from connectx.db.session import unit_of_work
    from connectx.privacy import rotation

    async def work() -> int:
        if master:
            result = await rotation.rotate_master()
            if result.configure is not None:
                typer.echo(
                    "The master key comes from CONNECTX_MASTER_KEY. Set it on every process to\n"
                    f"\n  CONNECTX_MASTER_KEY={result.configure}\n\n"
                    "(the new key first, the current one kept so nothing stops reading), restart\n"
                    "them one by one, then run `connectx keys rotate` again to re-wrap under it."
                )
            else:
                typer.echo(
                    f"master key {result.current_id} ({result.mode}): "
                    f"{result.rewrapped} keys re-wrapped under it"
                )
                if result.unused:
                    hint = (
                        "`connectx keys prune-masters`"
                        if result.mode == "file"
                        else "removing them from CONNECTX_MASTER_KEY"
                    )
                    typer.echo(
                        f"no key uses master keys {', '.join(result.unused)} any more: "
                        f"retire them with {hint} once every process has reloaded"
                    )
            async with unit_of_work() as db:
                await audit.record(
                    db,
                    actor="operator",
                    action="keys.master_rotated",
                    data={"rewrapped": result.rewrapped, "pending": result.configure is not None},
                )
        if scopes:
            done = await rotation.rotate_scopes()
            typer.echo(
                f"scope keys: {done.scopes} rotated, {done.subjects} subject keys re-wrapped"
            )
            async with unit_of_work() as db:
                await audit.record(
                    db,
                    actor="operator",
                    action="keys.scopes_rotated",
                    data={"scopes": done.scopes, "subjects": done.subjects},
                )
        return 0

    raise typer.Exit(_run(work))


@keys_app.command("prune-masters")
def prune_masters() -> None:
    """Remove master keys that no key uses any more from the key file."""
    from connectx.privacy import rotation

    try:
        removed = _run(rotation.prune_masters)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"removed master keys: {', '.join(removed)}" if removed else "nothing to remove")


@keys_app.command("reapply-erasures")
def reapply_erasures() -> None:
    """After restoring the key store from a backup: destroy again every key the audit log
    records as destroyed, so no erased person comes back."""
    from connectx.db.session import unit_of_work
    from connectx.privacy.vault import reapply_erasures as reapply

    async def work() -> int:
        async with unit_of_work() as db:
            return await reapply(db)

    typer.echo(f"{_run(work)} keys destroyed again")


@keys_app.command()
def status() -> None:
    """Where the key store is, which master keys are configured and used, key counts."""
    from connectx.privacy import rotation

    st = _run(rotation.status)
    typer.echo(f"key store: {st.keystore}")
    for i, mid in enumerate(st.masters_configured):
        role = "current" if i == 0 else "accepted"
        typer.echo(f"master {mid} ({role}): wraps {st.masters_in_use.get(mid, 0)} keys")
    for mid, n in sorted(st.masters_in_use.items()):
        if mid not in st.masters_configured:
            typer.echo(f"master {mid} (NOT CONFIGURED): wraps {n} keys")
    for kind, live, n in st.counts:
        typer.echo(f"{kind} keys {'live' if live else 'destroyed or retired'}: {n}")


@audit_app.command()
def verify() -> None:
    """Check the audit log's hash chain; name the first bad entry (exit status 1) or print OK."""
    from connectx.audit import service as audit
    from connectx.db.session import unit_of_work

    async def work() -> audit.ChainReport:
        async with unit_of_work() as db:
            report = await audit.verify(db)
            await audit.checkpoint(db, report)
        return report

    report = _run(work)
    typer.echo(report.describe(), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)
