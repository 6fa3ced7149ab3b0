"""No password, token, code or personal detail in any log line, and no password or token in any
response, across the whole account life cycle."""

from __future__ import annotations

import logging
from datetime import timedelta

import pyotp
import pytest

from connectx.kit import clock
from tests.accounts.support import BROWSER, SIGNUP, mailed_link, submit, token_of

NEW_PASSWORD = "silver-meadow-forty-one"


async def test_account_life_cycle_keeps_secrets_out_of_logs_and_responses(
    client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def call(method: str, url: str, **kw):  # type: ignore[no-untyped-def]
        response = await client.request(method, url, **kw)
        bodies.append(response.text + str(response.headers))
        return response

    await call("POST", "/api/v1/auth/signup", json=SIGNUP)
    await call("POST", "/api/v1/auth/signup", json={**SIGNUP, "password": "x" * 600})
    verify_link = await mailed_link(SIGNUP["email"], "verify_email")
    await call("GET", verify_link.removeprefix("http://testserver"), headers=BROWSER)
    await call(
        "POST", "/api/v1/auth/signin", json={"email": SIGNUP["email"], "password": "a-wrong-one-1"}
    )
    signin = await call(
        "POST",
        "/api/v1/auth/signin",
        json={"email": SIGNUP["email"], "password": SIGNUP["password"]},
    )
    csrf = signin.json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    enrol = await call("POST", "/api/v1/account/2fa/enrol", headers=headers)
    secret = enrol.json()["secret"]
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = await call(
        "POST", "/api/v1/account/2fa/confirm", json={"code": code}, headers=headers
    )
    recovery = confirmed.json()["recovery_codes"]
    clock.advance(timedelta(seconds=60))
    await call(
        "POST",
        "/api/v1/auth/signin",
        json={"email": SIGNUP["email"], "password": SIGNUP["password"]},
    )
    await call("POST", "/api/v1/auth/signin/2fa", json={"code": recovery[0]})
    await call("POST", "/api/v1/auth/forgot", json={"email": SIGNUP["email"]})
    reset_link = await mailed_link(SIGNUP["email"], "reset_password")
    await submit(
        client,
        reset_link.removeprefix("http://testserver"),
        "/reset",
        {"token": token_of(reset_link), "password": NEW_PASSWORD},
    )

    secrets = {
        "password": SIGNUP["password"],
        "new password": NEW_PASSWORD,
        "verify token": token_of(verify_link),
        "reset token": token_of(reset_link),
        "totp secret": secret,
        "recovery code": recovery[0],
        "session cookie": client.cookies.get("cx_session") or "-none-",
    }
    personal = {"email": SIGNUP["email"], "phone": "7911123456", "name": "Lovelace"}
    assert caplog.records, "expected the request and mail logs to be captured"
    lines = [record.getMessage() for record in caplog.records] + [
        str(record.__dict__) for record in caplog.records
    ]
    for line in lines:
        for label, value in {**secrets, **personal}.items():
            assert value not in line, f"{label} in a log line: {line[:200]}"

    # Responses: no password or one-time token ever comes back (the enrolment and
    # recovery-code answers are the one place their own secrets are shown, once).
    for body in bodies:
        for label in ("password", "new password", "verify token", "reset token"):
            assert secrets[label] not in body, label
