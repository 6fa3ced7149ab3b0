"""Connecting numbers: admins only, secrets write-only and encrypted at rest, Meta apps shared
between workspaces only by those who hold the app secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from connectx.db.session import unit_of_work
from connectx.models.channel import Channel, MetaApp
from tests.whatsapp.support import (
    APP_ID,
    APP_SECRET,
    PNID_A,
    PNID_B,
    VERIFY_TOKEN,
    WABA_B,
    channel_body,
    connect,
    count,
    rows,
)
from tests.workspaces.helpers import Caller, api_key, bearer, join, new_client, owner_of

SECRETS = ("EAAG-test-access-token-0001", APP_SECRET, VERIFY_TOKEN)


def _no_secret_in(payload: Any) -> None:
    dumped = repr(payload)
    for secret in SECRETS:
        assert secret not in dumped


async def test_admin_connects_lists_and_disconnects_a_number(owner: Caller) -> None:
    created = await connect(owner)
    assert created["phone_number_id"] == PNID_A
    assert created["display_phone_number"] == "+15550783881"
    assert created["status"] == "active"
    assert created["app"]["app_id"] == APP_ID
    assert created["webhook_url"] == "http://testserver/webhooks/whatsapp"
    _no_secret_in(created)

    listed = await owner.get("/api/v1/channels")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [created["id"]]
    _no_secret_in(listed.json())
    one = await owner.get(f"/api/v1/channels/{created['id']}")
    assert one.status_code == 200 and one.json()["id"] == created["id"]

    gone = await owner.delete(f"/api/v1/channels/{created['id']}")
    assert gone.status_code == 204
    assert (await owner.get("/api/v1/channels")).json()["items"] == []
    everything = await owner.get("/api/v1/channels?include_disconnected=true")
    assert everything.json()["items"][0]["status"] == "disconnected"
    # The last number of the app went away: its secrets were destroyed too.
    (app,) = await rows(MetaApp)
    assert app.secret_enc is None and app.verify_token_enc is None and app.retired_at
    (channel,) = await rows(Channel)
    assert channel.access_token_enc is None


async def test_tokens_and_secrets_are_encrypted_at_rest(owner: Caller) -> None:
    await connect(owner)
    async with unit_of_work() as db:
        dump = []
        for table in ("channels", "meta_apps"):
            for row in (await db.execute(text(f"SELECT * FROM {table}"))).all():
                dump.extend(bytes(v) if isinstance(v, bytes | memoryview) else str(v) for v in row)
    blob = b"".join(v if isinstance(v, bytes) else v.encode() for v in dump)
    for secret in SECRETS:
        assert secret.encode() not in blob


async def test_only_admins_and_admin_keys_manage_channels(app: Any, owner: Caller) -> None:
    agent = await join(app, owner, "agent")
    r = await agent.post("/api/v1/channels", json=channel_body())
    assert r.status_code == 403
    assert (await agent.get("/api/v1/channels")).status_code == 403

    reader = await api_key(owner, ["read"])
    admin_key = await api_key(owner, ["admin"])
    async with new_client(app) as bare:
        r = await bare.post("/api/v1/channels", json=channel_body(), headers=bearer(reader["key"]))
        assert r.status_code == 403
        r = await bare.post(
            "/api/v1/channels", json=channel_body(), headers=bearer(admin_key["key"])
        )
        assert r.status_code == 201, r.text
        listed = await bare.get("/api/v1/channels", headers=bearer(admin_key["key"]))
        assert listed.json()["items"][0]["phone_number_id"] == PNID_A
        assert (await bare.get("/api/v1/channels")).status_code == 401


async def test_cookie_requests_need_the_csrf_token(owner: Caller) -> None:
    r = await owner.client.post("/api/v1/channels", json=channel_body())
    assert r.status_code == 403
    assert "CSRF" in r.json()["detail"]
    assert await count(Channel) == 0


async def test_bad_input_is_422_with_a_message(owner: Caller) -> None:
    r = await owner.post("/api/v1/channels", json=channel_body(pnid="not-a-number"))
    assert r.status_code == 422
    assert "phone number ID" in r.json()["detail"]
    r = await owner.post("/api/v1/channels", json=channel_body(display="call me maybe"))
    assert r.status_code == 422
    assert "display phone number" in r.json()["detail"]
    r = await owner.post("/api/v1/channels", json=channel_body(verify_token=None))
    assert r.status_code == 422
    assert "verify token" in r.json()["detail"]
    r = await owner.post("/api/v1/channels", json={"phone_number_id": PNID_A})
    assert r.status_code == 422
    assert await count(Channel) == 0


async def test_a_number_lives_in_one_workspace_at_a_time(app: Any, owner: Caller) -> None:
    await connect(owner)
    r = await owner.post("/api/v1/channels", json=channel_body())
    assert r.status_code == 409 and "already connected here" in r.json()["detail"]

    other, _ = await owner_of(app, "Other Business")
    r = await other.post("/api/v1/channels", json=channel_body())
    assert r.status_code == 409 and "another workspace" in r.json()["detail"]

    (channel,) = (await owner.get("/api/v1/channels")).json()["items"]
    assert (await owner.delete(f"/api/v1/channels/{channel['id']}")).status_code == 204
    moved = await other.post("/api/v1/channels", json=channel_body())
    assert moved.status_code == 201, moved.text


async def test_an_app_is_shared_only_with_whoever_holds_its_secret(app: Any, owner: Caller) -> None:
    await connect(owner)
    other, _ = await owner_of(app, "Other Business")
    wrong = await other.post(
        "/api/v1/channels", json=channel_body(PNID_B, WABA_B, secret="not-the-real-secret")
    )
    assert wrong.status_code == 409 and "different app secret" in wrong.json()["detail"]
    wrong_token = await other.post(
        "/api/v1/channels", json=channel_body(PNID_B, WABA_B, verify_token="another-token")
    )
    assert wrong_token.status_code == 409
    ok = await other.post("/api/v1/channels", json=channel_body(PNID_B, WABA_B, verify_token=None))
    assert ok.status_code == 201, ok.text
    assert await count(MetaApp) == 1

    # The first workspace leaves: the app stays, because the other still uses it.
    (mine,) = (await owner.get("/api/v1/channels")).json()["items"]
    assert (await owner.delete(f"/api/v1/channels/{mine['id']}")).status_code == 204
    (app_row,) = await rows(MetaApp)
    assert app_row.secret_enc is not None and app_row.retired_at is None


async def test_other_workspaces_channels_are_not_found(app: Any, owner: Caller) -> None:
    created = await connect(owner)
    other, _ = await owner_of(app, "Other Business")
    assert (await other.get(f"/api/v1/channels/{created['id']}")).status_code == 404
    assert (await other.delete(f"/api/v1/channels/{created['id']}")).status_code == 404
    assert (await other.get("/api/v1/channels")).json()["items"] == []
