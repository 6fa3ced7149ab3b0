"""The verification and reset links travel by real SMTP (an aiosmtpd peer) and work."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.accounts.support import BROWSER, SIGNUP, token_of
from tests.support.mail import first_link


def _body(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


async def test_sign_up_link_and_reset_link_arrive_by_smtp(client, smtp_server) -> None:
    assert (await client.post("/api/v1/auth/signup", json=SIGNUP)).status_code == 201
    message = await smtp_server.wait_for(to=SIGNUP["email"], timeout=15)
    assert "Confirm your e-mail address" in message["Subject"]
    link = first_link(_body(message))
    assert link.startswith("http://testserver/verify?token=")
    opened = await client.get(link.removeprefix("http://testserver"), headers=BROWSER)
    assert opened.status_code == 303

    await client.post("/api/v1/auth/forgot", json={"email": SIGNUP["email"]})
    for _ in range(300):
        if len(smtp_server.to(SIGNUP["email"])) == 2:
            break
        await asyncio.sleep(0.05)
    reset = smtp_server.to(SIGNUP["email"])[-1]
    assert "Reset your ConnectX password" in reset["Subject"]
    token = token_of(first_link(_body(reset)))
    done = await client.post(
        "/api/v1/auth/reset", json={"token": token, "password": "tidal-orchard-ninety-9"}
    )
    assert done.status_code == 200
    signed = await client.post(
        "/api/v1/auth/signin",
        json={"email": SIGNUP["email"], "password": "tidal-orchard-ninety-9"},
    )
    assert signed.status_code == 200
