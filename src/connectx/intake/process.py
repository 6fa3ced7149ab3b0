"""``connectx serve``'s processing process: webhook events are processed beside the web server,
not in its event loop.

In embedded mode (no broker) one ``connectx serve`` used to run intake and processing in one
interpreter: every millisecond of processing was a millisecond a webhook POST waited for the
loop, and the machine's second core stayed idle (bench/results/intake-2026-12-03b.md). With
``CONNECTX_PROCESSING_PROCESS`` on (the default), the web server starts one child process
(``python -m connectx.intake.process``) that runs the webhook processor and nothing else; it is
still one command for the user, and the child stops with it.

The two talk over a socket pair, one line per message:

* web → child: ``w``, a wake-up, after a group commit, unless the child has been woken and
  has not slept since: the commits made while it works are told once, when it next says ``i``
  (the child also sweeps every ``POLL_S``, so a lost one delays, never loses); ``b`` for each
  window in which the web process's loop was saturated (the child's processor paces itself,
  :mod:`.pressure`). A ``w`` after every group commit (~110 a second under load, each a socket
  write that wakes the other process: 80-100 µs of the web loop's time here, session 22) went
  mostly to a child busy with its backlog or pacing;
* child → web: ``i`` when its processor goes to sleep until woken;
* child → web: ``e <JSON array of events>`` for each publication of real-time events by the
  child (a processing transaction's events together; without Redis the browsers' streams read
  the web process's own log), ``j <id>`` for each job it enqueues (the web process's embedded
  job runtime runs it; a lost one is found by the reconciler). One line per publication, not
  per event: the web process's loop is intake's, and a line per event (a message, each status
  change) cost it ~12-20 µs an event, ~6.5 µs batched (bench/results/intake-2026-12-05b.md).

On SQLite the two processes take turns at the raw events file's write lock through lock files
(:mod:`connectx.intake.turns`): intake's group commits and the child's marking of events done
(its processing transactions write the data file, whose lock intake never takes). Nothing
depends on the child for durability: events are committed before the 200, each processing
transaction commits or leaves its events pending, and a child that dies (even by SIGKILL) is
started again after ``RESTART_S``; a child whose web process died sees its socket close and
stops after its current transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

from connectx.config import get_settings
from connectx.db.engine import dispose_engines
from connectx.intake import pressure, processor, wakeup
from connectx.jobs import queue
from connectx.realtime import bus
from connectx.realtime.events import Event

log = logging.getLogger(__name__)

RESTART_S = 1.0
STOP_TIMEOUT_S = 30.0
# Real-time events per "e" line (an event is ~100-150 bytes of ids and codes), and the longest
# line the web process reads: far above what a line of them takes.
EVENTS_PER_LINE = 256
LINE_LIMIT = 1 << 20


class ProcessingProcess:
    """The web process's side: starts the child, forwards wake-ups, takes in its events and
    job wake-ups, restarts it if it dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._poke_pending = False
        self._told = False  # a "w" sent, and the child has not said "i" since (it works)
        self._untold = False  # a group commit made meanwhile: told at its next "i"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unhook = wakeup.also_notify(self._notified)
        self._unhook_busy = pressure.on_busy(self._busy)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._supervise(), name="processing-process")

    def _notified(self) -> None:  # any thread: coalesce to one pending "w"
        loop = self._loop
        if loop is None or self._poke_pending or loop.is_closed():
            return
        self._poke_pending = True
        if loop is wakeup.running_loop():  # (intake's group commit: the loop's own thread)
            loop.call_soon(self._poke)  # no self-pipe write to wake a loop that is awake
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._poke)

    def _busy(self) -> None:  # the batcher's flusher, on the loop's thread (a window: ~0.1 s)
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(b"b\n")

    def _poke(self) -> None:
        self._poke_pending = False
        if self._told:
            self._untold = True
        else:
            self._wake_child()

    def _child_sleeps(self) -> None:  # an "i" line: woken at once if it missed a commit
        if self._untold:
            self._wake_child()
        else:
            self._told = False

    def _wake_child(self) -> None:
        self._told, self._untold = True, False
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(b"w\n")

    def _spawn(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed module)
                [sys.executable, "-m", "connectx.intake.process", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()  # (a start that fails is tried again every RESTART_S: no fd per try)
            raise
        finally:
            theirs.close()
        return proc, ours

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                self._proc, sock = self._spawn()
                reader, self._writer = await asyncio.open_unix_connection(
                    sock=sock, limit=LINE_LIMIT
                )
                self._wake_child()  # look for pending events at once
                await self._read(reader)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("webhook processing process failed (%s)", type(exc).__name__)
            finally:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            code = await asyncio.to_thread(self._reap)
            if not self._stopping:
                log.error("webhook processing process ended (%s); restarting", code)
                await asyncio.sleep(RESTART_S)

    def _reap(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            kind, _, rest = line.rstrip(b"\n").partition(b" ")
            try:
                if kind == b"i":
                    self._child_sleeps()
                elif kind == b"e":
                    await bus.publish(Event.decode_many(rest))
                elif kind == b"j":
                    waker = queue.current_waker()
                    if waker is not None:
                        await waker(int(rest))
            except Exception as exc:  # one bad line costs one event, never the link
                log.error("processing process message not handled (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        """Stop the child: it finishes its transaction (up to ``STOP_TIMEOUT_S``), then exits."""
        self._stopping = True
        self._unhook()
        self._unhook_busy()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S + 5)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._loop = None


_running: ProcessingProcess | None = None


async def start(settings: object | None = None) -> bool:
    """Start the processing process when this web process would otherwise process in its own
    loop (embedded, ``CONNECTX_PROCESSING_PROCESS`` on). True when started (or running)."""
    global _running
    s = get_settings()
    if s.broker_url or not s.embedded_worker or not s.processing_process:
        return False
    if _running is None:
        _running = ProcessingProcess()
        await _running.start()
    return True


async def stop() -> None:
    global _running
    running, _running = _running, None
    if running is not None:
        await running.aclose()


# --- the child ---


def event_lines(events: list[Event]) -> bytes:
    """The ``e`` lines carrying ``events`` to the web process, ``EVENTS_PER_LINE`` a line."""
    return b"".join(
        b"e " + Event.encode_many(events[i : i + EVENTS_PER_LINE]) + b"\n"
        for i in range(0, len(events), EVENTS_PER_LINE)
    )


def heard(line: bytes) -> None:
    """The child: one line from the web process (``b``: intake is saturated; anything else is
    a wake-up)."""
    if line == b"b\n":
        pressure.note_busy()
    else:
        wakeup.notify()


def _child(fd: int) -> None:
    from connectx.jobs.runtime import load_task_modules
    from connectx.kit import logging as cx_logging

    settings = get_settings()
    cx_logging.configure(settings.log_level, settings.log_json)
    # CONNECTX_PROCESSING_NICE puts the child below the web process (default 0: beside it; a
    # niced child fell behind and the backlog it left cost POSTs more than it gave them,
    # docs/whatsapp-inbound.md). Never on SQLite: there the child holds the write lock intake
    # waits for, and a niced holder is descheduled while intake waits (priority inversion,
    # bench/results/intake-2026-12-03c.md).
    if not settings.is_sqlite and settings.processing_nice:
        with contextlib.suppress(OSError):
            os.nice(settings.processing_nice)
    load_task_modules(settings)  # registers the after-store listeners (real time, assignment)
    import connectx.realtime.hooks  # noqa: F401

    stopping = threading.Event()
    sock = socket.socket(fileno=fd)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_unix_connection(sock=sock)

        def request_stop() -> None:
            stopping.set()
            wakeup.notify()

        loop.add_signal_handler(signal.SIGTERM, request_stop)
        loop.add_signal_handler(signal.SIGINT, request_stop)

        async def forward(events: list[Event]) -> list[bus.Key]:
            writer.write(event_lines(events))
            return []

        async def wake_job(job_id: int) -> None:
            writer.write(b"j %d\n" % job_id)

        bus.forward_to(forward)
        queue.set_waker(wake_job)
        wakeup.before_sleep(lambda: writer.write(b"i\n"))

        async def listen() -> None:
            while line := await reader.readline():
                heard(line)
            request_stop()  # the web process has gone

        listener = loop.create_task(listen())
        try:
            await processor.run_forever(stopping)
        finally:
            listener.cancel()
            writer.close()
            await dispose_engines()

    asyncio.run(main())


if __name__ == "__main__":
    if os.name != "posix" or len(sys.argv) != 2:
        raise SystemExit("usage: python -m connectx.intake.process FD (started by connectx serve)")
    _child(int(sys.argv[1]))
