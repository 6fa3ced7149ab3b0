"""SMTP delivery settings from ``CONNECTX_SMTP_URL`` and the send itself (aiosmtplib).

``smtp://[user:pass@]host[:port]`` — plain SMTP (port 25), upgraded with STARTTLS when the server
offers it; ``?starttls=true`` requires STARTTLS (port 587), ``?starttls=false`` never uses it.
``smtps://[user:pass@]host[:port]`` — TLS from the first byte (port 465).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SmtpUrlError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool
    start_tls: bool | None  # None: use it when the server offers it
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0


def parse_url(url: str) -> SmtpTarget:
    """Read an SMTP URL; the error never repeats the URL (it may hold a password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise SmtpUrlError("CONNECTX_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise SmtpUrlError("CONNECTX_SMTP_URL has no host (smtp://host:port)")
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    start_tls: bool | None = None
    if "starttls" in query:
        if query["starttls"] in _TRUE:
            start_tls = True
        elif query["starttls"] in _FALSE:
            start_tls = False
        else:
            raise SmtpUrlError("CONNECTX_SMTP_URL: starttls must be true or false")
    use_tls = scheme == "smtps"
    if use_tls:
        start_tls = False
    timeout = 30.0
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError as exc:
            raise SmtpUrlError("CONNECTX_SMTP_URL: timeout must be a number of seconds") from exc
    try:
        explicit_port = parts.port
    except ValueError as exc:
        raise SmtpUrlError("CONNECTX_SMTP_URL has an invalid port") from exc
    port = explicit_port or (465 if use_tls else 587 if start_tls else 25)
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        use_tls=use_tls,
        start_tls=start_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout_s=timeout,
    )


def compose(
    *, sender: str, to: str, subject: str, body: str, headers: dict[str, str] | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "connectx.local"
    message["Message-ID"] = make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message


async def send(target: SmtpTarget, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        use_tls=target.use_tls,
        start_tls=target.start_tls,
        timeout=target.timeout_s,
    )
