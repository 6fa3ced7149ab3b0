"""The ``connectx`` command line."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from connectx.backups.cli import backup_app
from connectx.config import get_settings
from connectx.intake.cli import app as webhooks_app
from connectx.jobs.cli import worker
from connectx.kit import text_guard
from connectx.kit.errors import DomainError
from connectx.kit.numbers import INT64_MAX, number_out_of_range
from connectx.mail.cli import app as mail_app
from connectx.policies.cli import policy_app
from connectx.privacy.cli import audit_app, keys_app, privacy_app
from connectx.privacy.requests.cli import make_operator, requests_app
from connectx.retention.cli import retention_app
from connectx.security.cli import lift_suspension, suspend_workspace
from connectx.simulator.cli import simulator
from connectx.workspaces.cli import admin_app, demo


def _refuse(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


class Commands(TyperGroup):
    """Every command: what a person typed that a command cannot take is a one-line error and exit
    status 2, never a traceback (house rule 5, as for the API): an argument that is not text
    (bytes that are not UTF-8 arrive as unpaired surrogates), a domain error (an e-mail address
    that is none, an unknown reference), a number beyond 64 bits (an id)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for arg in args:
            if text_guard.problem(arg) is not None:
                _refuse("an argument is not UTF-8 text (or holds a NUL): type it again")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            _refuse(exc.detail)
        except (OverflowError, DBAPIError) as exc:
            if not number_out_of_range(exc):
                raise
            _refuse(f"a number given is out of range (an id is at most {INT64_MAX})")


app = typer.Typer(
    cls=Commands,
    help="ConnectX: WhatsApp Business customer engagement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
admin_app.command("suspend-workspace")(suspend_workspace)
admin_app.command("lift-suspension")(lift_suspension)
admin_app.command("make-operator")(make_operator)
privacy_app.add_typer(requests_app, name="requests")
app.add_typer(admin_app, name="admin")
app.add_typer(mail_app, name="mail")
app.add_typer(privacy_app, name="privacy")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(backup_app, name="backup")
app.add_typer(policy_app, name="policy")
app.add_typer(webhooks_app, name="webhooks")
app.command(help="Run background work as a separate process (distributed deployment).")(worker)
app.command(help="Seed a demo workspace with an owner you can sign in as.")(demo)
app.command()(simulator)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from connectx.db import migrate as db_migrate  # alembic is slow to import: only when needed

    settings = get_settings()
    db_migrate.upgrade(settings.effective_database_url)
    typer.echo(f"database at migration {', '.join(sorted(db_migrate.head_revisions()))}")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default CONNECTX_HOST)."),
    port: int | None = typer.Option(None, help="Port (default CONNECTX_PORT)."),
    workers: int = typer.Option(1, help="Web worker processes."),
    migrate_first: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Apply migrations first (embedded SQLite only)."
    ),
) -> None:
    """Serve the web app and API (and, in embedded mode, background work)."""
    import uvicorn

    from connectx.db import migrate as db_migrate
    from connectx.intake import cardscan
    from connectx.intake.fast_http import IntakeHttpToolsProtocol

    settings = get_settings()
    if migrate_first and settings.is_sqlite:
        db_migrate.upgrade(settings.effective_database_url)
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"ConnectX on http://{bind_host}:{bind_port}  (data: {settings.data_dir})")
    if not cardscan.built():
        typer.echo(
            "note: the card-number pre-scan (src/connectx/intake/cardscan.c) is not built: "
            "webhook bodies are masked in Python, slower (make install builds it with a C "
            "compiler)",
            err=True,
        )
    uvicorn.run(
        "connectx.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        http=IntakeHttpToolsProtocol,  # webhook deliveries answered without ASGI (fast_http.py)
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )
