"""Guardrail: everything the app logs during a realistic run, at DEBUG and in the production JSON
format, holds no e-mail address, phone number, token or password (house rule 8)."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectx.config import reset_settings
from tests.support.mail import first_link, outbox

EMAIL = "quentin.logcheck@example.org"
INVITEE = "ivy.invitee@example.net"
PHONE_INPUT = "+971 50 246 8013"
PHONE_E164 = "+971502468013"
PASSWORD = "velvet-anchor-thunder-82"
NEW_PASSWORD = "saffron-meadow-ticket-59"
NAME = "Quentin Logcheck"


async def _link(to: str, kind: str) -> str:
    for _ in range(100):
        messages = await outbox(to=to, kind=kind)
        if messages:
            return first_link(messages[0].body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} mail")


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@pytest.fixture
def debug_json(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The production log format (JSON), at DEBUG."""
    monkeypatch.setenv("CONNECTX_LOG_JSON", "true")
    monkeypatch.setenv("CONNECTX_LOG_LEVEL", "DEBUG")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()
    from connectx.config import get_settings
    from connectx.kit import logging as cx_logging

    settings = get_settings()
    cx_logging.configure(settings.log_level, settings.log_json)


async def test_a_realistic_run_logs_no_personal_data_or_secrets(
    debug_json: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectx.app import create_app

    captured = io.StringIO()  # the app's own handler writes to stderr: catch all of it
    monkeypatch.setattr(sys, "stderr", captured)
    app = create_app()

    @app.get("/test-only/boom")
    async def boom() -> None:  # a bug that puts personal data into an exception
        raise RuntimeError(f"could not deliver to {EMAIL} at {PHONE_E164}; password={PASSWORD}")

    secrets: list[str] = [EMAIL, INVITEE, PHONE_E164, PASSWORD, NEW_PASSWORD, NAME]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post(
                "/api/v1/auth/signup",
                json={"name": NAME, "email": EMAIL, "phone": PHONE_INPUT, "password": PASSWORD},
            )
            assert r.status_code == 201, r.text
            verify = _token(await _link(EMAIL, "verify_email"))
            secrets.append(verify)
            assert (await c.post("/api/v1/auth/verify", json={"token": verify})).status_code == 200

            for wrong in ("not-my-password-1", "not-my-password-2"):
                r = await c.post("/api/v1/auth/signin", json={"email": EMAIL, "password": wrong})
                assert r.status_code in (401, 422, 429)
            r = await c.post("/api/v1/auth/signin", json={"email": EMAIL, "password": PASSWORD})
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            secrets += [csrf, c.cookies["cx_session"]]
            h = {"X-CSRF-Token": csrf}

            r = await c.post("/api/v1/workspaces", json={"name": "Logcheck Ltd"}, headers=h)
            assert r.status_code == 201, r.text
            r = await c.post(
                "/api/v1/workspace/invitations",
                json={"email": INVITEE, "role": "agent"},
                headers=h,
            )
            assert r.status_code == 201, r.text
            secrets.append(_token(await _link(INVITEE, "invitation")))
            r = await c.post(
                "/api/v1/workspace/api-keys",
                json={"name": "crm", "scopes": ["read"]},
                headers=h,
            )
            if r.status_code == 422:  # scope names belong to the workspaces API
                r = await c.post("/api/v1/workspace/api-keys", json={"name": "crm"}, headers=h)
            assert r.status_code == 201, r.text
            key = r.json()["key"]
            secrets.append(key)
            me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
            assert me.status_code == 200, me.text

            # Mistakes and probes that carry personal data in the URL, the body and headers.
            await c.get(f"/api/v1/nothing-here/{EMAIL}?phone={PHONE_E164}&token={verify}")
            await c.get("/api/v1/me", headers={"Authorization": "Bearer cx_notarealkey_123456"})
            r = await c.post(
                "/api/v1/auth/signup",
                json={"name": NAME, "email": EMAIL, "phone": "12", "password": PASSWORD},
            )
            assert r.status_code in (409, 422)
            r = await c.get("/test-only/boom")
            assert r.status_code == 500 and EMAIL not in r.text

            assert (await c.post("/api/v1/auth/forgot", json={"email": EMAIL})).status_code == 202
            reset = _token(await _link(EMAIL, "reset_password"))
            secrets.append(reset)
            r = await c.post("/api/v1/auth/reset", json={"token": reset, "password": NEW_PASSWORD})
            assert r.status_code == 200, r.text
        await asyncio.sleep(0.3)  # let background mail delivery log what it logs

    logs = captured.getvalue()
    assert logs.count("\n") > 10, "the run logged (at DEBUG) more than a few lines"
    assert "could not deliver to [email]" in logs  # the exception was logged, redacted
    for secret in secrets:
        assert secret not in logs, f"a secret or personal value reached the logs: {secret[:4]}…"
    assert not re.search(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", logs)
    assert not re.search(r"\+\d{8,15}\b", logs)
    assert "502468013" not in logs and "50 246 8013" not in logs


async def test_database_errors_never_carry_the_bound_values() -> None:
    """A failing statement's message (logged with its traceback) names the SQL, not the values."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from connectx.db.session import unit_of_work

    with pytest.raises(DBAPIError) as caught:
        async with unit_of_work() as db:
            await db.execute(
                text("INSERT INTO workspaces (id, name) VALUES (:id, :name)"),
                {"id": 1, "name": EMAIL},  # created_at missing: NOT NULL fails
            )
    assert EMAIL not in str(caught.value) and "hidden" in str(caught.value)


async def test_an_error_that_quotes_a_rejected_value_logs_it_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug whose error quotes the value it rejected (a response that does not fit its model,
    ``int()`` of a stored word) answers 500 and is logged with its traceback: without the
    contact's name or the message's text, which no e-mail, phone or secret pattern finds."""
    from pydantic import BaseModel

    from connectx.app import create_app

    name, text = "Zainab Qurashi", "my order PLUMTREE arrives tomorrow"
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    app = create_app()

    class Out(BaseModel):
        id: int
        name: str

    @app.get("/test-only/shape", response_model=Out)
    async def shape() -> dict[str, object]:  # the stored name landed in the wrong field
        return {"id": name, "name": text}

    @app.get("/test-only/number")
    async def number() -> int:
        return int(f"{name}: {text}")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path in ("/test-only/shape", "/test-only/number"):
                r = await c.get(path)
                assert r.status_code == 500 and name not in r.text

    logs = captured.getvalue()
    assert "ResponseValidationError" in logs and "ValueError" in logs  # logged, with tracebacks
    assert "input_value=[hidden]" in logs or "'input': [hidden]" in logs
    for leak in ("Zainab", "Qurashi", "PLUMTREE"):
        assert leak not in logs, f"a rejected value reached the logs: {leak}"


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        ("login for ada@example.com", "ada@example.com"),
        ("GET /x?email=ada%40example.com", "ada%40example.com"),
        ("{'password': 'hunter2-hunter2', 'n': 1}", "hunter2"),
        ('{"new_password": "hunter2-hunter2"}', "hunter2"),
        ("access_token=abc123def&x=1", "abc123def"),
        ("X-CSRF-Token: Zm9vYmFy", "Zm9vYmFy"),
        ("Authorization: Bearer abc.def.ghi", "abc.def"),
        ("phone=%2B971501234567", "971501234567"),
        ("call +971 50 123 4567.", "4567"),
        ("wa_id 971501234567", "971501234567"),
        ("session " + "k" * 43, "k" * 43),
        (
            "1 validation error for Out\nname\n  Input should be a valid string [type=string_type,"
            " input_value=['Zainab Qurashi'], input_type=list]",
            "Zainab",
        ),
        ("{'type': 'int_parsing', 'loc': ('response', 'id'), 'input': 'Zainab Q'}", "Zainab"),
        ('[{"loc": ["body", "x"], "input": "hello PLUMTREE"}]', "PLUMTREE"),
        ("invalid literal for int() with base 10: 'Zainab Q'", "Zainab"),
        ("could not convert string to float: 'Zainab Q'", "Zainab"),
    ],
)
def test_the_redaction_filter_masks(line: str, leak: str) -> None:
    from connectx.kit.redaction import redact

    assert leak not in redact(line)


@pytest.mark.parametrize(
    "line", ["job 17 finished at 2026-11-27 10:30:00", "total 1234567.89 AED", "user:12 signed in"]
)
def test_the_redaction_filter_leaves_ordinary_text_alone(line: str) -> None:
    from connectx.kit.redaction import redact

    assert redact(line) == line


@pytest.mark.parametrize("word", ["x" * 60_000, "a_" * 30_000, "1-" * 30_000])
def test_redaction_takes_linear_time_on_long_words(word: str) -> None:
    """A log line may carry what a caller sent (a 60 KB query value): each pattern is tried at
    every position, so one that scans to the end of the word from each took quadratic time
    (the e-mail and key=value patterns: ~10 s here for 60 KB; now a few ms)."""
    import time

    from connectx.kit.redaction import redact

    began = time.process_time()
    redact(f"GET /x?q={word} from ada@example.com")
    assert time.process_time() - began < 1.0
    assert redact("a" * 70 + "@example.com").endswith("[email]")
    assert "hunter2" not in redact("x " + "a_" * 20 + "password=hunter2")


def test_a_record_that_cannot_be_redacted_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter shutdown the redaction module's globals may be gone (aiohttp's "unclosed"
    warnings are logged from finalizers then): such a record keeps only where it came from, and
    goes to the stderr of the moment, not to one closed since logging was configured."""
    import logging

    from connectx.kit import logging as cx_logging

    def gone(record: logging.LogRecord) -> logging.LogRecord:
        raise TypeError("'NoneType' object is not callable")

    record = cx_logging._factory(
        "aiohttp", logging.ERROR, __file__, 1, "to +14155550123", None, None, _scrub=gone
    )
    assert "14155550123" not in record.getMessage() and record.name == "aiohttp"
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    cx_logging._StderrHandler().emit(record)
    assert "could not be redacted" in now.getvalue()


async def test_uvicorn_builds_no_access_line_it_would_only_drop() -> None:
    """Uvicorn's access log is replaced by ours (it carries query strings): its logger is
    disabled and not propagated, so uvicorn's protocol sees no handler and skips building a
    line per request (the client's address and the quoted path: ~4 % of a webhook POST)."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from connectx.kit.logging import configure

    config = Config(app="connectx.app:create_app", factory=True, log_config=None, access_log=False)
    configure("INFO", json=False)  # what create_app does, after uvicorn configured its loggers
    protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    assert protocol.access_log is False
