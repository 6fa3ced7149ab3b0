"""`connectx admin …` and `connectx demo` through the real command (Typer's runner, in a thread
so each command runs its own event loop as it does from a shell), checked over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import select
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from connectx.cli import app as cli
from connectx.config import get_settings
from connectx.simulator.settings import DEMO_PHONE_NUMBER_ID
from tests.support.factories import DEFAULT_PASSWORD, signed_in
from tests.support.mail import first_link, outbox
from tests.workspaces.helpers import bearer, new_client, owner_of, person

PASSWORD = "harbour-lantern-quiet-91"


async def run(*args: str, input: str | None = None) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), input=input)


def assert_clean_failure(result: Result, words: str) -> None:
    assert result.exit_code != 0, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


async def test_create_workspace_with_a_new_owner(app: Any) -> None:
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        "Harbour Foods",
        "--owner-email",
        "olga@example.com",
        "--owner-name",
        "Olga Owner",
        "--owner-phone",
        "+971501110001",
        "--password",
        "--phone",
        "+971501234567",
        input=f"{PASSWORD}\n",  # as `printf '%s\n' "$PW" | connectx admin create-workspace ...`
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "http://testserver/signin" in result.output
    async with new_client(app) as c:
        await signed_in(c, "olga@example.com", PASSWORD)
        me = (await c.get("/api/v1/me")).json()
        assert me["workspace"]["name"] == "Harbour Foods" and me["role"] == "owner"
        assert me["user"]["name"] == "Olga Owner"


async def test_create_workspace_prompts_for_the_password(app: Any) -> None:
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        "Prompted Co",
        "--owner-email",
        "pat@example.com",
        "--owner-name",
        "Pat",
        "--owner-phone",
        "+971501110002",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input
    async with new_client(app) as c:
        await signed_in(c, "pat@example.com", PASSWORD)


async def test_create_workspace_for_an_existing_account(app: Any) -> None:
    ada = await person(app, email="ada@example.com")
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        "Second Business",
        "--owner-email",
        "ADA@example.com",
    )
    assert result.exit_code == 0, result.output
    assert "existing account" in result.output
    names = {w["name"] for w in (await ada.get("/api/v1/workspaces")).json()}
    assert names == {"Second Business"}


async def test_create_workspace_errors_are_messages(app: Any) -> None:
    result = await run(
        "admin", "create-workspace", "--name", "X", "--owner-email", "new@example.com"
    )
    assert_clean_failure(result, "--owner-name")
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        "X",
        "--owner-email",
        "not-an-email",
        "--owner-name",
        "N",
        "--owner-phone",
        "+971501110003",
        "--password",
        input=f"{PASSWORD}\n",
    )
    assert_clean_failure(result, "valid e-mail address")
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        " ",
        "--owner-email",
        "n@example.com",
        "--owner-name",
        "N",
        "--owner-phone",
        "+971501110003",
        "--password",
        input=f"{PASSWORD}\n",
    )
    assert_clean_failure(result, "Business name is required")
    result = await run(
        "admin",
        "create-workspace",
        "--name",
        "X",
        "--owner-email",
        "n@example.com",
        "--owner-name",
        "N",
        "--owner-phone",
        "+971501110003",
        "--password",
        input="short\n",
    )
    assert_clean_failure(result, "at least 12 characters")


NEW_OWNER = [
    "--name",
    "Argv Co",
    "--owner-email",
    "ann@example.com",
    "--owner-name",
    "Ann",
    "--owner-phone",
    "+971501110004",
]


async def test_create_workspace_refuses_a_password_in_the_arguments(app: Any) -> None:
    """As for reset-password: ``--password SECRET`` would leave the owner's password in the
    shell's history and in ``ps``; refused with the reason, never echoed, nothing created."""
    for argv in (
        [*NEW_OWNER, "--password", PASSWORD],
        ["--password", PASSWORD, *NEW_OWNER],
        [*NEW_OWNER[:2], "--password", PASSWORD, *NEW_OWNER[2:]],
        [*NEW_OWNER, f"--password={PASSWORD}"],
        [*NEW_OWNER, "--password", "--", PASSWORD],
    ):
        result = await run("admin", "create-workspace", *argv, input=f"{PASSWORD}\n")
        assert result.exit_code == 2, (argv, result.output)
        assert "--password takes no value" in result.output and "history" in result.output
        assert PASSWORD not in result.output and "Traceback" not in result.output
    result = await run("admin", "create-workspace", *NEW_OWNER, input="")  # nothing piped
    assert_clean_failure(result, "no password on standard input")
    # Nothing was created by any of the above: the first real run makes a new account.
    result = await run("admin", "create-workspace", *NEW_OWNER, "--password", input=f"{PASSWORD}\n")
    assert result.exit_code == 0 and "(new account)" in result.output, result.output


async def test_create_workspace_on_a_terminal_asks_twice_hidden(app: Any) -> None:
    line = PASSWORD.encode() + b"\r"
    code, shown = await asyncio.to_thread(
        _on_a_terminal,
        ["admin", "create-workspace", *NEW_OWNER, "--password"],
        [(b"Password for the new owner: ", line), (b"Repeat for confirmation: ", line)],
    )
    assert code == 0, shown
    assert b"(new account)" in shown, shown
    assert PASSWORD.encode() not in shown  # typed with the terminal's echo off
    async with new_client(app) as c:
        await signed_in(c, "ann@example.com", PASSWORD)


async def test_create_api_key_prints_it_once_and_it_works(app: Any) -> None:
    owner, ws_id = await owner_of(app)
    result = await run(
        "admin",
        "create-api-key",
        str(ws_id),
        "--name",
        "ops",
        "--scope",
        "read",
        "--scope",
        "admin",
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"^(cx_\S+)$", result.output, re.M)
    assert match
    async with new_client(app) as c:
        me = (await c.get("/api/v1/me", headers=bearer(match.group(1)))).json()
    assert me["workspace"]["id"] == ws_id and me["api_key"]["scopes"] == ["read", "admin"]
    listed = (await owner.get("/api/v1/workspace/api-keys")).json()
    assert [k["name"] for k in listed] == ["ops"]

    assert_clean_failure(
        await run("admin", "create-api-key", "999999", "--name", "x"), "no workspace 999999"
    )
    assert_clean_failure(
        await run("admin", "create-api-key", str(ws_id), "--name", "x", "--scope", "root"),
        "Unknown scope root",
    )


async def test_reset_password_by_mail_or_directly(app: Any) -> None:
    ada = await person(app, email="ada@example.com")
    result = await run("admin", "reset-password", "ada@example.com")
    assert result.exit_code == 0, result.output
    mails = await outbox(to="ada@example.com", kind="reset_password")
    assert len(mails) == 1 and "/reset?token=" in first_link(mails[0].body)

    # Not a terminal: one line of standard input, as `printf '%s\n' "$PW" | connectx ...`.
    result = await run(
        "admin", "reset-password", "ada@example.com", "--password", input=f"{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert (await ada.get("/api/v1/me")).status_code == 401  # signed out everywhere
    async with new_client(app) as c:
        await signed_in(c, "ada@example.com", PASSWORD)

    assert_clean_failure(await run("admin", "reset-password", "nobody@example.com"), "no account")
    assert_clean_failure(
        await run("admin", "reset-password", "ada@example.com", "--password", input="short\n"),
        "at least 12",
    )
    assert_clean_failure(
        await run("admin", "reset-password", "ada@example.com", "--password", input=""),
        "no password on standard input",
    )
    assert DEFAULT_PASSWORD != PASSWORD


async def test_reset_password_refuses_a_password_in_the_arguments(app: Any) -> None:
    """The old form, ``--password SECRET``, would leave the password in the shell's history and
    in ``ps``: it is refused with the reason, never echoed, and nothing changes."""
    ada = await person(app, email="ada@example.com")
    for argv in (
        ["ada@example.com", "--password", PASSWORD],
        ["--password", PASSWORD, "ada@example.com"],
        ["ada@example.com", f"--password={PASSWORD}"],
    ):
        result = await run("admin", "reset-password", *argv, input=f"{PASSWORD}\n")
        assert result.exit_code == 2, result.output
        assert "--password takes no value" in result.output and "history" in result.output
        assert PASSWORD not in result.output and "Traceback" not in result.output
    assert (await ada.get("/api/v1/me")).status_code == 200  # still signed in: nothing set
    assert await outbox(to="ada@example.com", kind="reset_password") == []


def _on_a_terminal(argv: list[str], answers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Run ``connectx *argv`` with a pseudo-terminal as its controlling terminal (so its
    prompts read it as a person's keyboard), answering each prompt as it appears."""
    pid, fd = os.forkpty()
    if pid == 0:  # the child: nothing but exec
        try:
            os.execv(sys.executable, [sys.executable, "-m", "connectx", *argv])
        finally:
            os._exit(127)
    seen = b""
    answered = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if answers and answers[0][0] in seen[answered:]:
                prompt, answer = answers.pop(0)
                answered = seen.index(prompt, answered) + len(prompt)
                os.write(fd, answer)
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen


async def test_reset_password_on_a_terminal_asks_twice_hidden(app: Any) -> None:
    ada = await person(app, email="ada@example.com")
    line = PASSWORD.encode() + b"\r"
    code, shown = await asyncio.to_thread(
        _on_a_terminal,
        ["admin", "reset-password", "ada@example.com", "--password"],
        # Click prints "New password:", then getpass turns the echo off (dropping what was typed
        # before) and writes the " ": answer after it, as a person would.
        [(b"New password: ", line), (b"Repeat for confirmation: ", line)],
    )
    assert code == 0, shown
    assert b"every session of the account was signed out" in shown, shown
    assert PASSWORD.encode() not in shown  # typed with the terminal's echo off
    assert (await ada.get("/api/v1/me")).status_code == 401
    async with new_client(app) as c:
        await signed_in(c, "ada@example.com", PASSWORD)


def _printed_password(output: str) -> str:
    match = re.search(r"password: (\S+)", output)
    assert match, output
    return match.group(1)


async def test_demo_seed_is_idempotent_and_says_how_to_sign_in(app: Any) -> None:
    first = await run("demo")
    assert first.exit_code == 0, first.output
    assert "Demo Trading LLC" in first.output
    assert "Sign in at http://testserver/signin" in first.output
    assert "demo@connectx.local" in first.output and "agent@connectx.local" in first.output
    password = _printed_password(first.output)
    stored = Path(get_settings().data_dir) / "demo-password.txt"
    assert stored.read_text().strip() == password
    assert stored.stat().st_mode & 0o077 == 0

    second = await run("demo")
    assert second.exit_code == 0, second.output
    assert "already there" in second.output
    assert _printed_password(second.output) == password

    async with new_client(app) as c:
        await signed_in(c, "demo@connectx.local", password)
        me = (await c.get("/api/v1/me")).json()
        assert me["workspace"]["name"] == "Demo Trading LLC" and me["role"] == "owner"
        assert len((await c.get("/api/v1/workspaces")).json()) == 1
        members = (await c.get("/api/v1/workspace/members")).json()
        assert sorted((m["email"], m["role"]) for m in members) == [
            ("agent@connectx.local", "agent"),
            ("demo@connectx.local", "owner"),
        ]
        # The simulator's demo number is connected once, so `make run` can chat end to end.
        assert "simulator's demo number is connected" in first.output
        channels = (await c.get("/api/v1/channels")).json()
        numbers = [ch["phone_number_id"] for ch in channels.get("items", channels)]
        assert numbers == [DEMO_PHONE_NUMBER_ID]
    stored.unlink()


async def test_demo_repairs_a_password_that_no_longer_works(app: Any) -> None:
    first = await run("demo")
    password = _printed_password(first.output)
    stored = Path(get_settings().data_dir) / "demo-password.txt"
    stored.unlink()  # lost: the next run sets and prints a new one that works
    again = await run("demo")
    new_password = _printed_password(again.output)
    assert new_password != password
    async with new_client(app) as c:
        await signed_in(c, "demo@connectx.local", new_password)
    stored.unlink()
