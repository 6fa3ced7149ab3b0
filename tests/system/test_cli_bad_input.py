"""Every ``connectx`` command given bad arguments answers with a one-line error and a non-zero
exit status, never a traceback (house rule 5, as the API's bad-input sweep checks for routes):
per parameter, by its type, numbers beyond 64 bits, negative and non-ASCII digits, arguments
that are not UTF-8 (undecodable bytes reach Python as unpaired surrogates), empty and over-long
text, ids of the wrong shape, missing files and directories. The commands that start servers
(serve, worker, simulator) are left out: given good arguments they would run until stopped.

The commands run for real (against the test database): every path given is inside the test's
own directory, which is also the working directory. (A first version gave ``/`` as a backup
folder: ``backup create`` made it mode 0700, and every service not running as root lost access
to its files until it was put back.)"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from connectx.cli import app as cli

SERVERS = {"serve", "worker", "simulator"}
NOT_UTF8 = "x\udcff"  # the byte 0xff in argv, as Python decodes it


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            if not (not path and name in SERVERS):
                yield from _commands(sub, [*path, name])
    else:
        yield path, command


def _kind(param: Any) -> str:
    return str(param.bare_type())


def _good(param: Any) -> str:
    kind = _kind(param)
    return "1" if "int" in kind or "float" in kind else "x"


def _bad(param: Any, tmp: Path) -> list[str]:
    kind = _kind(param)
    if getattr(param, "is_flag", False) or kind == "bool":
        return []
    if "int" in kind:
        return [str(10**20), "-1", "0", "\u0663"]
    if "float" in kind:
        return ["1e400", "nan", "-1"]
    if "Path" in kind:  # missing, a file where a folder is wanted, not UTF-8: all in ``tmp``
        return [str(tmp / "missing" / "deeper"), str(tmp / "a-file"), NOT_UTF8]
    return [NOT_UTF8, "", "x" * 3000, "99999999999999999999", "ws:99999999999999999999", "-1"]


def _argv(command: Any, bad: Any, value: str) -> list[str]:
    out: list[str] = []
    for param in command.params:
        if param.name == "help" or getattr(param, "is_flag", False):
            continue
        given = value if param is bad else (_good(param) if param.required else None)
        if given is None:
            continue
        is_argument = type(param).__name__.endswith("Argument")
        out += [given] if is_argument else [param.opts[0], given]
    return out


async def invoke(*argv: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(argv), input="n\n")


async def test_no_command_answers_bad_arguments_with_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # (relative paths given land here too)
    (tmp_path / "a-file").write_text("not a backup, a policy or a folder")
    tried = 0
    tracebacks = []
    for path, command in _commands(typer.main.get_command(cli), []):
        runs = [[]] + [_argv(command, p, v) for p in command.params for v in _bad(p, tmp_path)]
        for extra in runs:
            tried += 1
            result = await invoke(*path, *extra)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                tracebacks.append((path + extra, traceback.format_exception(result.exception)))
    assert tried > 250
    assert not tracebacks, "\n".join(f"{argv}:\n{''.join(tb)[-800:]}" for argv, tb in tracebacks)


async def test_the_errors_say_what_to_do() -> None:
    r = await invoke("webhooks", "retry", str(10**20))
    assert r.exit_code == 2 and "out of range" in r.output
    r = await invoke("admin", "make-operator", NOT_UTF8)
    assert r.exit_code == 2 and "not UTF-8 text" in r.output
    r = await invoke("admin", "make-operator", "nobody")
    assert r.exit_code == 2 and "Enter a valid e-mail address" in r.output
