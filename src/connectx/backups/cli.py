"""``connectx backup create | list | restore``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

backup_app = typer.Typer(
    help="Encrypted backups of the data and media; the key store is backed up apart.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    from connectx.backups.archive import BackupError
    from connectx.db import errors
    from connectx.db.engine import dispose_engines
    from connectx.kit.crypto import CryptoError

    async def main() -> T:
        try:
            return await work()
        finally:
            await dispose_engines()

    try:
        return asyncio.run(main())
    except BackupError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except CryptoError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.secho(f"error: {errors.describe(exc)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.secho(f"error: {exc.strerror or exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@backup_app.command("create")
def create(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where data backups go (default CONNECTX_BACKUP_DIR or var/backups)."
    ),
    keys_dir: Path | None = typer.Option(
        None, "--keys-dir", help="Where the key-store backup goes (default <dir>/keys)."
    ),
    keep: int | None = typer.Option(
        None, "--keep", help="Then keep only this many of each (default: keep all)."
    ),
) -> None:
    """Take a consistent online backup of the database and the media store, encrypted, and a
    separate encrypted backup of the key store."""
    from connectx.backups import service

    async def work() -> tuple[service.BackupInfo, service.BackupInfo, int]:
        data, keys = await service.create(out_dir=directory, keys_dir=keys_dir)
        removed = await service.rotate(directory, keep) if keep is not None else []
        return data, keys, len(removed)

    data, keys, removed = _run(work)
    typer.echo(f"data backup:      {data.path} ({_size(data.size)})")
    typer.echo(f"key-store backup: {keys.path} ({_size(keys.size)})")
    typer.echo("Keep the key-store backups apart from the data backups.")
    if removed:
        typer.echo(f"removed {removed} older backup files")


@backup_app.command("list")
def list_command(
    directory: Path | None = typer.Option(None, "--dir", help="The backup folder."),
    as_json: bool = typer.Option(False, "--json", help="JSON for programs."),
) -> None:
    """List backups, newest first."""
    from connectx.backups import service

    backups = service.list_backups(directory)
    if as_json:
        typer.echo(json.dumps([service.describe(b) for b in backups], indent=2))
        return
    if not backups:
        typer.echo("no backups")
        return
    for b in backups:
        extra = " +media" if b.media else ""
        typer.echo(f"{b.stamp}  {b.kind:<5} {b.database:<10} {_size(b.size):>10}{extra}  {b.path}")


@backup_app.command("restore")
def restore(
    backup: Path = typer.Argument(..., help="The data backup file (connectx-<time>.cxbak)."),
    keys: Path | None = typer.Option(
        None, "--keys", help="Also restore the key store from this key-store backup."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the database and the media store with a backup, then re-apply erasures made
    since. Stop every other ConnectX process first."""
    from connectx.backups import service
    from connectx.backups.archive import BackupError, peek

    for path in (backup, *([keys] if keys else [])):
        if not path.is_file():
            typer.secho(f"error: no such file: {path}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1)
    try:
        stamp = peek(backup).fields.get("stamp")
    except BackupError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if not yes:
        typer.confirm(
            f"This replaces the database{' and the key store' if keys else ''} and the media "
            f"store with the backup taken {stamp}. Every other ConnectX process must be "
            "stopped. Continue?",
            abort=True,
        )
    report = _run(lambda: service.restore(backup, keys_path=keys))
    typer.echo(f"restored the backup taken {report.backup.stamp}")
    if report.keys_restored:
        typer.echo(f"key store restored; {report.keys_destroyed_again} erased keys destroyed again")
    typer.echo(
        f"erasures re-applied: {report.erased_subjects} subjects, {report.erased_rows} rows; "
        f"media files: {report.media_files}"
    )
    typer.echo("Run `connectx migrate` before starting ConnectX if this backup is older.")
