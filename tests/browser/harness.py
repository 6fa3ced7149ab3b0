"""The real ConnectX server for browser tests: ``connectx serve`` in a subprocess.

It runs on a free loopback port with its own data folder, SQLite database and master key, and
mails through a real SMTP peer (aiosmtpd, :class:`tests.support.smtp.SmtpServer`) so tests can
follow the links the platform sends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx

from tests.support.smtp import SmtpServer, free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CONNECTX = Path(sys.executable).parent / "connectx"
READY_TIMEOUT_S = 60.0
_LINK = re.compile(r"https?://[^\s<>\"']+")


def mail_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    assert body is not None, "the message has no body"
    content = body.get_content()
    assert isinstance(content, str)
    return content


@dataclass
class LiveServer:
    data_dir: Path
    log_path: Path
    smtp: SmtpServer
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        # Start from the caller's environment without the test session's CONNECTX_* settings
        # (they point at the in-process test database).
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTX_")}
        env.update(
            {
                "CONNECTX_HOST": "127.0.0.1",
                "CONNECTX_PORT": str(self.port),
                "CONNECTX_DATA_DIR": str(self.data_dir),
                "CONNECTX_DATABASE_URL": f"sqlite+aiosqlite:///{self.data_dir / 'connectx.db'}",
                "CONNECTX_PUBLIC_URL": self.url,
                "CONNECTX_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "CONNECTX_SMTP_URL": self.smtp.url,
                "CONNECTX_LOG_JSON": "false",
                "CONNECTX_RECONCILE_INTERVAL_S": "1",
            }
        )
        return env

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(CONNECTX), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.environment(),
            cwd=self.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"connectx serve exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    resp = await client.get(f"{self.url}/readyz")
                    if resp.status_code == 200:
                        return
                    last = f"{resp.status_code} {resp.text}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                await asyncio.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"connectx serve was not ready within {READY_TIMEOUT_S}s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def mailed_link(self, to: str, path: str, timeout: float = 20) -> str:
        """The newest link to this site containing ``path`` in mail sent to ``to``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.smtp.to(to)):
                for link in _LINK.findall(mail_text(message)):
                    if link.startswith(self.url) and path in link:
                        return link.rstrip(".,)")
            if time.monotonic() >= deadline:
                subjects = [str(m["Subject"]) for m in self.smtp.to(to)]
                raise AssertionError(
                    f"no mail with a {path!r} link reached the recipient within {timeout}s "
                    f"(their mail: {subjects}); server log:\n{self.log_tail(30)}"
                )
            await asyncio.sleep(0.1)
