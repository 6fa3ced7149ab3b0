"""``connectx admin`` (create a workspace with its owner, create an API key, reset a password)
and ``connectx demo`` (seed the demo workspace).

Every command runs in one unit of work; problems are reported as a plain message with a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperCommand

from connectx.accounts import service as accounts
from connectx.accounts.caller import Principal
from connectx.config import get_settings
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.kit.crypto import CryptoError
from connectx.kit.errors import DomainError, InvalidInput
from connectx.workspaces import api_keys
from connectx.workspaces import demo as demo_seed
from connectx.workspaces import repository as repo
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import SCOPES

admin_app = typer.Typer(
    help="Administration: workspaces, API keys, passwords.", no_args_is_help=True
)

T = TypeVar("T")
OPERATOR = "operator"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh loop; turn every expected failure into a message and exit 1."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await dispose_engines()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        raise _fail(exc.detail) from None
    except CryptoError:
        raise _fail(
            "the data cannot be decrypted with the configured master key "
            "(check CONNECTX_MASTER_KEY or the key file in the data folder)."
        ) from None
    except SQLAlchemyError as exc:
        raise _fail(
            "the database is not ready or not reachable "
            f"({type(exc).__name__}); run `connectx migrate` first and check "
            "CONNECTX_DATABASE_URL."
        ) from None
    except OSError as exc:
        raise _fail(f"{exc.strerror or exc} ({type(exc).__name__}).") from None


def _operator() -> Principal:
    return Principal(actor=OPERATOR)


ARGV_REFUSAL = (
    "--password takes no value: a password on the command line lands in the shell's history "
    "and is visible to every user of this machine (ps). Give --password alone and type the "
    "password when asked, or pipe it as one line on standard input."
)


class _PasswordNotInArgv(TyperCommand):
    """A command whose ``--password`` is a flag (``create-workspace``, ``reset-password``): a
    value given with it (``--password SECRET``, ``--password=SECRET``) is refused with a message
    that says why, never echoing it (Click's own "unexpected extra argument (SECRET)" would print
    the password). A value shows as one positional token more than the command's arguments take,
    once the values of its other options are set aside."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if _password_in_argv(args, self.params):
            raise _fail(ARGV_REFUSAL, 2)
        return super().parse_args(ctx, args)


def _password_in_argv(args: list[str], params: list[Any]) -> bool:
    # By ``param_type_name``: Typer ships its own copy of Click's classes.
    options = [p for p in params if p.param_type_name == "option"]
    valued = {name for p in options if not p.is_flag and not p.count for name in p.opts}
    arguments = [p for p in params if p.param_type_name == "argument"]
    # An argument taking any number of values: only ``--password=`` can be told apart.
    unbounded = any(p.nargs < 0 for p in arguments)
    slots = len(args) if unbounded else sum(p.nargs for p in arguments)
    flag, positional, i = False, 0, 0
    while i < len(args):
        word = args[i]
        if word == "--":
            positional += len(args) - i - 1
            break
        if word.startswith("--password="):
            return True
        if word == "--password":
            flag = True
        elif word in valued:
            i += 1  # its value, whatever it looks like
        elif word == "-" or not word.startswith("-"):
            positional += 1
        i += 1
    return flag and positional > slots


def _new_password(prompt: str = "New password") -> str:
    """Asked twice with hidden input on a terminal; otherwise one line of standard input."""
    if sys.stdin is None:
        raise _fail("there is no standard input to read the password from.")
    if sys.stdin.isatty():
        return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True))
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise _fail("no password on standard input (one line is read).")
    return password


@admin_app.command("create-workspace", cls=_PasswordNotInArgv)
def create_workspace(
    name: str = typer.Option(..., "--name", help="Business name of the workspace."),
    owner_email: str = typer.Option(..., "--owner-email", help="The owner's e-mail address."),
    owner_name: str = typer.Option(
        "", "--owner-name", help="The owner's name (needed when the account is new)."
    ),
    owner_phone: str = typer.Option(
        "", "--owner-phone", help="The owner's phone, international form (new accounts)."
    ),
    password: bool = typer.Option(
        False,
        "--password",
        help="Read the new owner's password: asked twice, hidden, on a terminal, or one line "
        "of standard input; never given on the command line. A new owner's password is read "
        "this way with or without the flag. Not used when the account exists.",
    ),
    address: str = typer.Option("", "--address", help="Business address."),
    phone: str = typer.Option("", "--phone", help="Business phone, international form."),
) -> None:
    """Create a workspace and its owner (an existing account with that e-mail becomes owner).

    A new owner account is created with its e-mail marked verified: the operator vouches for it.
    """

    async def exists() -> bool:
        async with unit_of_work() as db:
            return await accounts.find_user_by_email(db, owner_email) is not None

    known = _run(exists)  # before asking: no password is typed for an existing account
    new_password: str | None = None
    if not known:
        if not owner_name.strip() or not owner_phone.strip():
            raise _fail(
                "no account uses that e-mail yet: give --owner-name and --owner-phone to create it."
            )
        new_password = _new_password("Password for the new owner")
    elif password:
        typer.echo(
            "The account exists: --password is not used (its password is unchanged).", err=True
        )

    async def work() -> tuple[int, int, bool]:
        async with unit_of_work() as db:
            by = _operator()
            user = await accounts.find_user_by_email(db, owner_email)
            created = user is None
            if user is None:
                if new_password is None:  # created since it was looked up
                    raise InvalidInput("the account was created meanwhile: run the command again.")
                user = await accounts.create_user(
                    db,
                    name=owner_name,
                    email=owner_email,
                    phone=owner_phone,
                    password=new_password,
                    verified=True,
                    consent_source="import",  # created by the operator; marketing not granted
                    actor=OPERATOR,
                )
            ws = await workspaces.create_workspace(
                db, by, owner_user_id=user.id, name=name, address=address, phone=phone
            )
            return ws.id, user.id, created

    ws_id, user_id, created = _run(work)
    who = "new account" if created else "existing account"
    typer.echo(f"Workspace {ws_id} created; its owner is user {user_id} ({who}).")
    typer.echo(f"Sign in at {get_settings().effective_public_url}/signin")


@admin_app.command("create-api-key")
def create_api_key(
    workspace_id: int = typer.Argument(..., help="The workspace's id."),
    name: str = typer.Option(..., "--name", help="What the key is for, e.g. 'CRM sync'."),
    scopes: list[str] = typer.Option(
        ["read"],
        "--scope",
        help=f"A scope to grant ({', '.join(SCOPES)}); repeat for several.",
    ),
) -> None:
    """Create an API key for a workspace and print it (once: only its hash is kept)."""

    async def work() -> tuple[int, str]:
        async with unit_of_work() as db:
            if await repo.workspace(db, workspace_id) is None:
                raise InvalidInput(f"there is no workspace {workspace_id}.")
            by = Principal(actor=OPERATOR, workspace_id=workspace_id, role="owner")
            new = await api_keys.create(db, by, name=name, scopes=scopes)
            return new.key.id, new.secret

    key_id, secret = _run(work)
    typer.echo(f"API key {key_id} created for workspace {workspace_id}. It is shown only now:")
    typer.echo(secret)


@admin_app.command("reset-password", cls=_PasswordNotInArgv)
def reset_password(
    email: str = typer.Argument(..., help="The account's e-mail address."),
    password: bool = typer.Option(
        False,
        "--password",
        help="Set a new password now (and sign the account out everywhere) instead of "
        "e-mailing a reset link. It is asked twice, hidden, on a terminal, or read as one line "
        "of standard input; never given on the command line.",
    ),
) -> None:
    """E-mail the account a one-time reset link, or set a password with --password."""

    async def find() -> int:
        async with unit_of_work() as db:
            user = await accounts.find_user_by_email(db, email)
            if user is None:
                raise InvalidInput("no account uses that e-mail address.")
            return user.id

    user_id = _run(find)  # before asking: nobody types a password for an unknown address
    new_password = _new_password() if password else None

    async def work() -> None:
        async with unit_of_work() as db:
            if new_password is None:
                await accounts.request_password_reset(db, email=email, request=None)
            else:
                await accounts.set_password(
                    db, user_id, new_password, actor=OPERATOR, reason="operator reset"
                )

    _run(work)
    if new_password is None:
        typer.echo("A password-reset link was e-mailed to the account (valid 1 hour).")
    else:
        typer.echo("Password set; every session of the account was signed out.")


def demo() -> None:
    """Seed the demo workspace "Demo Trading LLC" with a verified owner and an agent."""

    async def work() -> demo_seed.DemoSeed:
        async with unit_of_work() as db:
            return await demo_seed.seed(db)

    seeded = _run(work)
    state = "created" if seeded.created else "already there"
    typer.echo(f'Demo workspace "{demo_seed.WORKSPACE_NAME}" {state}.')
    typer.echo(f"Sign in at {seeded.signin_url}")
    typer.echo(f"  owner:    {seeded.owner_email}")
    typer.echo(f"  agent:    {seeded.agent_email}")
    typer.echo(
        f"  password: {seeded.password}  (both accounts; kept in {demo_seed.password_file()})"
    )
    if seeded.channel_id is not None:
        typer.echo(
            f"  WhatsApp: the simulator's demo number is connected (channel {seeded.channel_id})"
        )
