"""The public privacy center and account settings: filing, one-time codes (10 minutes, 3
attempts, hashed at rest), nothing learnt about who is a customer, the DPO form."""

from __future__ import annotations

from datetime import timedelta

import httpx

from connectx.kit import clock
from tests.privacy_requests.support import (
    actions,
    all_requests,
    mailed_code,
    reference_in,
    request_row,
)
from tests.support.factories import make_user, signed_in
from tests.support.mail import outbox
from tests.web.html import parse


async def _form(client: httpx.AsyncClient) -> str:
    r = await client.get("/privacy-center")
    assert r.status_code == 200
    field = parse(r.text).find("input", name="csrf_token")
    assert field is not None
    return str(field.attrs["value"])


async def _file(client: httpx.AsyncClient, **data: str) -> httpx.Response:
    token = await _form(client)
    body = {"who": "account_holder", "kind": "access", "details": "", **data}
    return await client.post("/privacy-center/requests", data={**body, "csrf_token": token})


async def _verify(client: httpx.AsyncClient, reference: str, code: str) -> httpx.Response:
    token = await _form(client)
    return await client.post(
        "/privacy-center/verify",
        data={"reference": reference, "code": code, "csrf_token": token},
    )


async def test_page_shows_the_rights_the_dpo_and_the_retention_schedule(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/privacy-center")
    assert r.status_code == 200
    page = parse(r.text)
    assert page.find("form", id="request-form") is not None
    assert page.find("form", id="dpo-form") is not None
    assert "support@connectxsaudi.com" in r.text  # the DPO address of policy §11
    assert "Dubai Silicon Oasis" in r.text
    assert "consent_proof" in r.text  # the retention schedule
    for words in ("A copy of your data", "Erasing your data", "Withdrawing your consent"):
        assert words in r.text


async def test_an_account_holder_verifies_with_a_mailed_code(client: httpx.AsyncClient) -> None:
    user = await make_user(email="holder@example.com")
    r = await _file(client, address="Holder@Example.com", kind="erasure")
    assert r.status_code == 200, r.text
    reference = reference_in(r.text)
    req = await request_row(reference)
    assert (req.status, req.subject, req.workspace_id) == ("unverified", f"user:{user.id}", None)
    assert req.due_at - req.received_at == timedelta(days=30)
    code = await mailed_code("holder@example.com")
    assert req.code_hash is not None and code.encode() not in req.code_hash  # hashed at rest

    wrong = "000000" if code != "000000" else "111111"
    r = await _verify(client, reference, wrong)
    assert r.status_code == 422 and "2 attempts left" in r.text
    assert (await request_row(reference)).code_attempts == 1  # the failure was kept

    r = await _verify(client, reference, code)
    assert r.status_code == 200, r.text
    assert parse(r.text).find("p", id="request-confirmed") is not None
    req = await request_row(reference)
    assert (req.status, req.verification) == ("pending", "code_email")
    assert await actions(req.id) == ["filed", "code_sent", "code_rejected", "verified", "notified"]
    confirmations = await outbox(to="holder@example.com", kind="privacy_request")
    assert confirmations and reference in confirmations[0].body


async def test_a_code_expires_after_ten_minutes_and_allows_three_attempts(
    client: httpx.AsyncClient,
) -> None:
    await make_user(email="slow@example.com")
    reference = reference_in((await _file(client, address="slow@example.com")).text)
    code = await mailed_code("slow@example.com")
    clock.advance(timedelta(minutes=10, seconds=1))
    r = await _verify(client, reference, code)
    assert r.status_code == 422 and "expired" in r.text
    assert (await request_row(reference)).status == "unverified"

    # A new code (after the minute between codes); three wrong tries use it up.
    token = await _form(client)
    r = await client.post(
        "/privacy-center/resend", data={"reference": reference, "csrf_token": token}
    )
    assert r.status_code == 200, r.text
    code = await mailed_code("slow@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for left in ("2 attempts left", "1 attempt left"):
        r = await _verify(client, reference, wrong)
        assert left in r.text
    r = await _verify(client, reference, wrong)
    assert "no longer works" in r.text
    r = await _verify(client, reference, code)  # the right code, too late
    assert r.status_code == 422
    assert (await request_row(reference)).status == "unverified"


async def test_an_unknown_address_gets_the_same_answer_and_no_code(
    client: httpx.AsyncClient,
) -> None:
    await make_user(email="known@example.com")
    known = await _file(client, address="known@example.com")
    unknown = await _file(client, address="nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert parse(unknown.text).find_all("p", id="not-delivered") == []  # nothing tells them apart
    assert await outbox(to="nobody@example.com") == []
    reference = reference_in(unknown.text)
    assert (await request_row(reference)).subject is None
    # It lapses unverified after 7 days.
    from connectx.db.session import unit_of_work
    from connectx.privacy.requests import service

    clock.advance(timedelta(days=7, minutes=1))
    async with unit_of_work() as db:
        assert await service.lapse_unverified(db) == 2
    req = await request_row(reference)
    assert req.status == "lapsed" and req.closed_at is not None


async def test_bad_input_is_named(client: httpx.AsyncClient) -> None:
    r = await _file(client, address="not an email")
    assert r.status_code == 422 and "e-mail address" in r.text
    r = await _file(client, who="customer", business="no-such-business", address="+971501234567")
    assert r.status_code == 422 and "no business" in r.text
    r = await _file(client, address="a@example.com", kind="everything")
    assert r.status_code == 422 and "Choose what you ask for" in r.text
    assert await all_requests() == []


async def test_a_signed_in_account_holder_files_without_a_code(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(email="member@example.com")
    csrf = await signed_in(client, "member@example.com")
    r = await client.post(
        "/account/privacy/requests",
        data={"kind": "withdrawal", "purpose": "marketing", "csrf_token": csrf},
    )
    assert r.status_code == 303, r.text
    [req] = await all_requests()
    assert (req.subject, req.status, req.verification) == (
        f"user:{user.id}",
        "pending",
        "signed_in",
    )
    page = await client.get("/account/privacy")
    assert req.reference in page.text


async def test_the_dpo_form_files_a_tracked_inquiry(client: httpx.AsyncClient) -> None:
    token = await _form(client)
    r = await client.post(
        "/privacy-center/dpo",
        data={
            "name": "Ines",
            "email": "ines@example.com",
            "message": "Which processors do you use in Saudi Arabia?",
            "csrf_token": token,
        },
    )
    assert r.status_code == 200, r.text
    [req] = await all_requests()
    assert (req.kind, req.status, req.workspace_id) == ("inquiry", "pending", None)
    assert req.due_at - req.received_at == timedelta(days=30)
    assert any(
        m.to == "support@connectxsaudi.com" for m in await outbox(kind="privacy_request")
    )  # the DPO is told
    r = await client.post(
        "/privacy-center/dpo", data={"email": "x@example.com", "message": "", "csrf_token": token}
    )
    assert r.status_code == 422 and "Write your question" in r.text
