"""Helpers for the accounts tests: forms with their CSRF token, mailed links."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.mail import first_link, outbox

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


async def submit(client: Any, page: str, action: str, data: dict[str, str], **kw: Any) -> Any:
    """Open ``page`` like a browser, then post ``data`` to ``action`` with the page's token."""
    shown = await client.get(page, headers=BROWSER)
    assert shown.status_code == 200, shown.text
    return await client.post(
        action, data={**data, "csrf_token": csrf_from(shown.text)}, headers=BROWSER, **kw
    )


async def mailed_link(to: str, kind: str) -> str:
    messages = await outbox(to=to, kind=kind)
    assert messages, f"no {kind} mail to that address"
    return first_link(messages[0].body)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


SIGNUP = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+44 7911 123456",
    "password": "copper-kettle-morning-31",
}
