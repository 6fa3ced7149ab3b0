"""Make accounts and sign clients in, the way users do (service calls and the real endpoints)."""

from __future__ import annotations

from typing import Any

from connectx.db.session import unit_of_work
from connectx.models.account import User

DEFAULT_PASSWORD = "quiet-harbour-lantern-47"
_counter = 0


def _next() -> int:
    global _counter
    _counter += 1
    return _counter


async def make_user(
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str = "Ada Lovelace",
    phone: str = "+447911123456",
    verified: bool = True,
    **extra: Any,
) -> User:
    """A committed account holder (e-mail verified unless ``verified=False``).
    ``extra`` goes to :func:`connectx.accounts.service.create_user` (billing_address, ...)."""
    from connectx.accounts.service import create_user

    async with unit_of_work() as db:
        user = await create_user(
            db,
            name=name,
            email=email or f"user{_next()}@example.com",
            phone=phone,
            password=password,
            verified=verified,
            **extra,
        )
    return user


async def signed_in(
    client: Any, email: str, password: str = DEFAULT_PASSWORD, *, totp_secret: str | None = None
) -> str:
    """Sign ``client`` (an httpx.AsyncClient on the app) in through ``POST /api/v1/auth/signin``
    (and the 2FA step when ``totp_secret`` is given); its cookie jar then holds the session.
    Returns the session's CSRF token, to send as the ``X-CSRF-Token`` header on state changes."""
    response = await client.post("/api/v1/auth/signin", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    if body["status"] == "second_factor_due":
        assert totp_secret, "this account has two-factor authentication: pass totp_secret"
        import pyotp

        from connectx.kit import clock

        code = pyotp.TOTP(totp_secret).at(clock.now())
        response = await client.post("/api/v1/auth/signin/2fa", json={"code": code})
        assert response.status_code == 200, response.text
        body = response.json()
    return str(body["csrf_token"])
