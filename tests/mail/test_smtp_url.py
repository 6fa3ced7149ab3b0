"""CONNECTX_SMTP_URL: the forms operators write, and credentials reaching a real SMTP peer."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectx.mail import smtp
from tests.support.smtp import free_port


@pytest.mark.parametrize(
    ("url", "host", "port", "use_tls", "start_tls"),
    [
        ("smtp://mail.example.net", "mail.example.net", 25, False, None),
        ("smtp://mail.example.net:2525", "mail.example.net", 2525, False, None),
        ("smtp://mail.example.net?starttls=true", "mail.example.net", 587, False, True),
        ("smtp://127.0.0.1:1025?starttls=false", "127.0.0.1", 1025, False, False),
        ("smtps://mail.example.net", "mail.example.net", 465, True, False),
        ("SMTPS://mail.example.net:8465", "mail.example.net", 8465, True, False),
    ],
)
def test_smtp_url_forms(
    url: str, host: str, port: int, use_tls: bool, start_tls: bool | None
) -> None:
    target = smtp.parse_url(url)
    assert (target.host, target.port, target.use_tls, target.start_tls) == (
        host,
        port,
        use_tls,
        start_tls,
    )
    assert target.username is None and target.password is None


def test_credentials_are_url_decoded_and_never_shown() -> None:
    target = smtp.parse_url("smtp://mailer%40corp:p%40ss%2Fw0rd@mail.example.net:587")
    assert (target.username, target.password) == ("mailer@corp", "p@ss/w0rd")
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://mail.example.net", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://mail.example.net?starttls=maybe", "starttls must be true or false"),
        ("smtp://user:hunter2@mail.example.net:99999", "invalid port"),
    ],
)
def test_bad_smtp_urls_say_what_is_wrong_without_repeating_secrets(url: str, problem: str) -> None:
    with pytest.raises(smtp.SmtpUrlError) as caught:
        smtp.parse_url(url)
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)


class _Authenticated:
    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []
        self.received: list[bytes] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cr@t")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_credentials_in_the_url_log_in_to_the_smtp_peer() -> None:
    peer = _Authenticated()
    port = free_port()
    controller = Controller(
        peer,
        hostname="127.0.0.1",
        port=port,
        authenticator=peer,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        target = smtp.parse_url(f"smtp://mailer:s3cr%40t@127.0.0.1:{port}?starttls=false")
        message = smtp.compose(
            sender="ConnectX <no-reply@connectx.local>",
            to="ada@example.com",
            subject="hello",
            body="hi",
        )
        await smtp.send(target, message)
    finally:
        controller.stop()
    assert peer.logins == [("mailer", "s3cr@t")]
    assert len(peer.received) == 1
