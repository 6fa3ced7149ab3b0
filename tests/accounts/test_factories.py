"""The shared factories work through the real service and sign-in endpoint."""

from __future__ import annotations

from tests.support.factories import make_user, signed_in


async def test_make_user_then_sign_in_gives_a_working_session(client) -> None:
    user = await make_user(email="Grace@Example.com")
    token = await signed_in(client, " grace@example.COM ")
    assert token
    profile = await client.get("/api/v1/account/profile")
    assert profile.status_code == 200
    assert profile.json()["id"] == user.id
    assert profile.json()["email"] == "grace@example.com"
    changed = await client.patch(
        "/api/v1/account/profile", json={"name": "Grace Hopper"}, headers={"X-CSRF-Token": token}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Grace Hopper"
