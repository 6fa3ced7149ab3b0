"""The ``connectx`` command line."""

from __future__ import annotations

import typer

from connectx.backups.cli import backup_app
from connectx.config import get_settings
from connectx.intake.cli import app as webhooks_app
from connectx.jobs.cli import worker
from connectx.mail.cli import app as mail_app
from connectx.policies.cli import policy_app
from connectx.privacy.cli import audit_app, keys_app, privacy_app
from connectx.privacy.requests.cli import make_operator, requests_app
from connectx.retention.cli import retention_app
from connectx.security.cli import lift_suspension, suspend_workspace
from connectx.simulator.cli import simulator
from connectx.workspaces.cli import admin_app, demo

app = typer.Typer(
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

    settings = get_settings()
    if migrate_first and settings.is_sqlite:
        db_migrate.upgrade(settings.effective_database_url)
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"ConnectX on http://{bind_host}:{bind_port}  (data: {settings.data_dir})")
    uvicorn.run(
        "connectx.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )
