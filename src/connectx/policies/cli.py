"""``connectx policy publish | list``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

policy_app = typer.Typer(
    help="Versioned policy documents: the privacy policy and the terms.", no_args_is_help=True
)


@policy_app.command("publish")
def publish(
    file: Path = typer.Argument(..., help="The new text (title, 'Last Updated: <date>', body)."),
    material: bool = typer.Option(
        ...,
        "--material/--minor",
        help="Material: e-mail every account holder and ask them to accept it at sign-in.",
    ),
    kind: str = typer.Option("privacy", "--kind", help="privacy or terms."),
    summary: str = typer.Option("", "--summary", help="What changed, in a sentence or two."),
) -> None:
    """Publish a new version; it is in force at once."""
    from connectx.db.engine import dispose_engines
    from connectx.db.session import unit_of_work
    from connectx.kit.errors import DomainError
    from connectx.policies import service

    if not file.is_file():
        typer.secho(f"error: no such file: {file}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    text = file.read_text(encoding="utf-8")

    async def work() -> tuple[int, str]:
        try:
            async with unit_of_work() as db:
                row = await service.publish(
                    db, kind=kind, text=text, material=material, summary=summary or None
                )
                return row.id, row.effective_on.isoformat()
        finally:
            await dispose_engines()

    try:
        version_id, effective = asyncio.run(work())
    except DomainError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    label = service.KINDS[kind].label
    typer.echo(
        f"published {label} dated {effective} (version {version_id}, "
        f"{'material' if material else 'minor'} change)"
    )
    if material:
        typer.echo("every account holder is being e-mailed; they accept it at their next sign-in")


@policy_app.command("list")
def list_versions(kind: str = typer.Option("privacy", "--kind", help="privacy or terms.")) -> None:
    """Every version, newest first."""
    from connectx.db.engine import dispose_engines
    from connectx.kit.errors import DomainError
    from connectx.policies import service

    async def work() -> list[service.Version]:
        try:
            return await service.versions(kind)
        finally:
            await dispose_engines()

    try:
        items = asyncio.run(work())
    except DomainError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    for v in reversed(items):
        change = "shipped" if v.id is None else "material" if v.material else "minor"
        typer.echo(f"{v.key}  {change:<8} {v.summary or ''}".rstrip())
