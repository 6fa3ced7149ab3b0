"""An unsubscribe link in every marketing e-mail (policy §8): a signed one-click token, a page
that confirms, RFC 8058 headers honoured by a POST without cookies; the withdrawal in the ledger
and no more marketing mail after it. Delivered to a real SMTP peer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectx.db.session import unit_of_work
from connectx.mail.service import send, send_marketing
from connectx.privacy import consent, unsubscribe
from tests.support.factories import make_user


async def _mail(user_id: int, email: str, purpose: str = "marketing") -> Any:
    async with unit_of_work() as db:
        return await send_marketing(
            db,
            user_id=user_id,
            to=email,
            purpose=purpose,
            subject="Winter news",
            body="Hello from ConnectX.",
        )


async def test_one_click_unsubscribe_from_a_marketing_mail(client: Any, smtp_server: Any) -> None:
    ada = await make_user(email="ada@example.com", marketing_opt_in=True)
    assert await _mail(ada.id, "ada@example.com") is not None
    message = await smtp_server.wait_for(to="ada@example.com", timeout=10)
    header = str(message["List-Unsubscribe"]).strip()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(http\S+/unsubscribe/(\S+))>", header)
    assert link, header
    url, token = link.group(1), link.group(2)
    assert url in message.get_content()  # the same link in the text

    path = f"/unsubscribe/{token}"
    page = await client.get(path)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and "Unsubscribe from news and offers" in page.text
    async with unit_of_work() as db:
        assert await consent.is_granted(db, f"user:{ada.id}", "marketing", "email")

    # the mail provider's one-click POST (RFC 8058): no cookie, no CSRF token
    r = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "You are unsubscribed from news and offers" in r.text
    r = await client.post(path, data={"List-Unsubscribe": "One-Click"})  # again: no new record
    assert r.status_code == 200
    async with unit_of_work() as db:
        history = await consent.history(db, f"user:{ada.id}", "marketing", "email")
    assert [(h.granted, h.source, h.actor) for h in history] == [
        (True, "signup_form", f"user:{ada.id}"),
        (False, "unsubscribe_link", f"user:{ada.id}"),
    ]
    # no more marketing mail; other purposes are separate decisions
    assert await _mail(ada.id, "ada@example.com") is None
    assert await _mail(ada.id, "ada@example.com", "product_updates") is None  # never given


async def test_links_cannot_be_forged_or_reused_for_someone_else(client: Any) -> None:
    ada = await make_user(email="ada@example.com", marketing_opt_in=True)
    token = await unsubscribe.token_for(ada.id, "marketing")
    other = await unsubscribe.token_for(ada.id + 1, "marketing")
    forged = other.split(".")[0] + "." + token.split(".")[1]  # Ada's signature, someone else
    for bad in (forged, token[:-2], "nonsense", token.replace(".", "")):
        r = await client.post(f"/unsubscribe/{bad}")
        assert r.status_code == 404 and "not valid" in r.text, bad
        assert (await client.get(f"/unsubscribe/{bad}")).status_code == 404
    async with unit_of_work() as db:
        assert await consent.is_granted(db, f"user:{ada.id}", "marketing", "email")


async def test_marketing_mail_has_one_way_out() -> None:
    async with unit_of_work() as db:
        with pytest.raises(ValueError, match="send_marketing"):
            await send(
                db,
                to="a@example.com",
                subject="s",
                body="b",
                kind="marketing",
                subject_ref="user:1",
            )
