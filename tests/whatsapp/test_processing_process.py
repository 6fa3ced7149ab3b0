"""Embedded mode's processing process: ``connectx serve`` (here: the app's lifespan) processes
webhook events in a child process, whose real-time events reach the web process's streams; a
child killed with SIGKILL is started again and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectx.config import reset_settings
from connectx.intake import process as processing_process
from connectx.intake import processor
from connectx.models.message import Message
from connectx.realtime import bus
from tests.whatsapp.support import connect, count, delivered, event_counts, load, rows
from tests.workspaces.helpers import owner_of


@pytest.fixture
async def serving(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("CONNECTX_PROCESSING_PROCESS", "true")
    reset_settings()
    from connectx.app import create_app

    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


async def _until_processed(n: int, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await event_counts() != {"processed": n}:
        assert loop.time() < deadline, await event_counts()
        await asyncio.sleep(0.05)


def _message(n: int) -> dict[str, Any]:
    payload = load("message_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.child.{n}"
    return payload


@pytest.mark.slow
async def test_events_are_processed_by_the_child_and_its_events_reach_the_web_process(
    serving: Any,
) -> None:
    running = processing_process._running
    assert running is not None and in_loop_processor_off()
    child = running._proc
    assert child is not None and child.pid != os.getpid()
    owner, workspace = await owner_of(serving)
    await connect(owner)
    seen = bus.LOCAL.head(workspace)  # (earlier tests may have used the same workspace id)
    transport = httpx.ASGITransport(app=serving)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await delivered(client, _message(1))
        await _until_processed(1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while running._told:  # its "i": done, it sleeps until woken
            assert loop.time() < deadline, "the child never said it sleeps"
            await asyncio.sleep(0.01)
        (message,) = await rows(Message)
        assert message.workspace_id == workspace
        deadline = loop.time() + 30
        while not [
            e
            for _, e in bus.LOCAL.since(workspace, seen) or []
            if e.type == "message.new" and e.data["message_id"] == message.id
        ]:
            assert loop.time() < deadline, "the child's real-time event never arrived"
            await asyncio.sleep(0.05)

        # SIGKILL the child: the web process starts another, which processes what follows.
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait, 10)
        await delivered(client, _message(2))
        await delivered(client, _message(1))  # a repeat: stored once
        await _until_processed(3)
        assert running._proc is not None and running._proc.pid != child.pid
    assert await count(Message) == 2
    await owner.client.aclose()


def in_loop_processor_off() -> bool:
    """The web process runs no processor of its own while the child does."""
    return processor._embedded is None


@pytest.mark.slow
async def test_the_child_is_the_default_and_is_not_niced_on_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``connectx serve`` with no setting runs processing in the child, not in its loop; on
    SQLite the child keeps the web server's priority (it holds the write lock intake waits
    for), on PostgreSQL it runs ``CONNECTX_PROCESSING_NICE`` below (by default 0: beside it)."""
    from connectx.app import create_app
    from connectx.config import Settings, get_settings

    assert Settings.model_fields["processing_nice"].default == 0
    monkeypatch.delenv("CONNECTX_PROCESSING_PROCESS")
    monkeypatch.setenv("CONNECTX_PROCESSING_NICE", "3")
    reset_settings()
    application = create_app()
    async with application.router.lifespan_context(application):
        running = processing_process._running
        assert running is not None and in_loop_processor_off()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while running._proc is None or running._writer is None:
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        owner, _ = await owner_of(application)
        await connect(owner)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await delivered(client, _message(1))
            await _until_processed(1)  # the child is past the point where it would nice itself
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        nice = 0 if get_settings().is_sqlite else 3
        assert os.getpriority(os.PRIO_PROCESS, running._proc.pid) == min(19, ours + nice)
        await owner.client.aclose()


def test_without_redis_neither_process_imports_the_redis_client() -> None:
    """The Redis client library costs a process ~15-18 MB; without ``CONNECTX_REDIS_URL``
    neither the web process (the app) nor the processing process (its modules and listeners)
    imports it (both did through the real-time bus: ~35 MB of the platform's ~300 MB goal)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from connectx.config import get_settings\n"
        "from connectx.jobs.runtime import load_task_modules\n"
        "import connectx.intake.process\n"
        "load_task_modules(get_settings())\n"
        "import connectx.realtime.hooks\n"
        "from connectx.app import create_app\n"
        "create_app()\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CONNECTX_REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_child_that_cannot_be_started_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The supervisor tries again every second: each failed start kept its end of the socket
    pair open (a file descriptor a second until the process ran out of them)."""
    import socket
    import subprocess

    made: list[socket.socket] = []
    real = socket.socketpair

    def pair() -> tuple[socket.socket, socket.socket]:
        found = real()
        made.extend(found)
        return found

    def no_child(*args: Any, **kw: Any) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(socket, "socketpair", pair)
    monkeypatch.setattr(subprocess, "Popen", no_child)
    supervisor = processing_process.ProcessingProcess()
    try:
        with pytest.raises(OSError):
            supervisor._spawn()
    finally:
        supervisor._unhook()
    assert len(made) == 2 and all(s.fileno() == -1 for s in made)  # both closed


def test_real_time_events_go_to_the_web_process_a_line_per_publication() -> None:
    """A line per publication (up to ``EVENTS_PER_LINE`` events), not per event: each line costs
    the web process's loop a read, a decode and a publish. Lines stay far under the reader's
    limit; a list of events round-trips, in order, with its user-scoped events."""
    from connectx.realtime.events import Event

    events = [
        Event(3, "message.status", {"message_id": i, "conversation_id": 9, "status": "read"})
        for i in range(600)
    ] + [Event(3, "conversation.assigned", {"conversation_id": 9}, user_id=12)]
    lines = processing_process.event_lines(events).splitlines()
    assert len(lines) == 3 and all(line.startswith(b"e ") for line in lines)
    assert max(map(len, lines)) < processing_process.LINE_LIMIT // 16
    decoded = [e for line in lines for e in Event.decode_many(line[2:])]
    assert decoded == events
    assert processing_process.event_lines([]) == b""
    with pytest.raises(ValueError, match="list of events"):
        Event.decode_many(events[0].encode())


@pytest.mark.slow
async def test_every_event_of_a_large_batch_reaches_the_web_process(serving: Any) -> None:
    """300 messages in one POST: their message.new events cross in a few lines, all of them,
    in order, and the child is the same one after (a line too long would end the link)."""
    from tests.whatsapp.support import batch

    running = processing_process._running
    assert running is not None
    child = running._proc
    owner, workspace = await owner_of(serving)
    await connect(owner)
    seen = bus.LOCAL.head(workspace)
    transport = httpx.ASGITransport(app=serving)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await delivered(client, batch(*[_message(n) for n in range(300)]))
        await _until_processed(1)
        ids = sorted(m.id for m in await rows(Message))
        assert len(ids) == 300
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            got = [
                e.data["message_id"]
                for _, e in bus.LOCAL.since(workspace, seen) or []
                if e.type == "message.new"
            ]
            if len(got) >= 300 or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert got == ids
        assert running._proc is child
    await owner.client.aclose()


def test_the_processing_process_does_not_import_the_web_framework() -> None:
    """What the child imports is its memory (docs/whatsapp-inbound.md, "Memory"): FastAPI,
    Starlette and the multipart parser are the web process's, ~8 MB it has no use for."""
    import subprocess
    import sys

    probe = (
        "import sys, connectx.intake.process, connectx.intake.processor; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'python_multipart', 'jinja2', 'uvicorn'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
