"""One-time messages shown on the next page ("Your password was changed.").

``set_flash(response, "…")`` on a redirect stores the message in a short-lived cookie signed with
a key derived from the master key (so nobody can make the site display text of their choosing);
:func:`connectx.web.render.render` shows it on the next page and clears it. Messages must not
hold personal data (no emails, names or phone numbers): they travel in a cookie.
"""

from __future__ import annotations

import base64
import hmac
from functools import lru_cache

from fastapi import Request
from starlette.responses import Response

from connectx.config import get_settings
from connectx.kit.crypto import keyed_hash, load_master_keys

COOKIE = "cx_flash"
MAX_AGE_S = 120
MAX_LENGTH = 300


@lru_cache(maxsize=4)
def _key(master: bytes) -> bytes:
    return keyed_hash(master, "connectx/web/flash-cookie/v1")


def _current_key() -> bytes:
    return _key(load_master_keys(get_settings())[0])


def _sign(payload: str) -> str:
    return base64.urlsafe_b64encode(keyed_hash(_current_key(), payload)[:18]).decode()


def set_flash(response: Response, message: str) -> None:
    """Show ``message`` once on the next page rendered for this browser."""
    payload = base64.urlsafe_b64encode(message[:MAX_LENGTH].encode()).decode()
    response.set_cookie(
        COOKIE,
        f"{payload}.{_sign(payload)}",
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
        path="/",
    )


def read_flash(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw or "." not in raw:
        return None
    payload, _, signature = raw.rpartition(".")
    if not hmac.compare_digest(signature, _sign(payload)):
        return None
    try:
        return base64.urlsafe_b64decode(payload.encode()).decode()[:MAX_LENGTH]
    except ValueError:
        return None


def clear_flash(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
