"""Cookie categories, the visitor's choice, Global Privacy Control (policy §2.2, §9).

Categories:

* **strictly necessary** (always on, no choice): ``cx_session`` (signing in), ``cx_csrf`` (form
  security), ``cx_flash`` (a one-time message), ``cx_device`` (recognising your device for
  sign-in alerts), ``cx_consent`` (this choice, and a random visitor id for its record);
* **preferences**: ``cx_prefs`` (display theme);
* **analytics**: ``cx_aid`` (a random first-party id to count returning visitors).

Nothing beyond strictly necessary is set or read before the visitor chooses. The choice lives in
the ``cx_consent`` cookie (per browser) and every choice is appended to the consent ledger
(channel ``web``, source ``cookie_banner``) under ``user:<id>`` when signed in, else under the
pseudonymous ``visitor:<random id>`` kept in that cookie. ``Sec-GPC: 1`` (Global Privacy Control)
turns every optional category off for the request that carries it, whatever was chosen.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.privacy import consent

CONSENT_COOKIE = "cx_consent"
PREFS_COOKIE = "cx_prefs"
ANALYTICS_COOKIE = "cx_aid"
CONSENT_DAYS = 180  # the banner asks again after this long
PREFS_DAYS = 365
ANALYTICS_DAYS = 390  # 13 months

OPTIONAL = ("preferences", "analytics")
WORDING = {
    "preferences": (
        "Preferences: remember your display choices on this browser (light or dark theme)."
    ),
    "analytics": (
        "Analytics: a first-party cookie that lets us count returning visitors and see which "
        "pages are used, so we can improve ConnectX. Nothing is shared with third parties."
    ),
}
NECESSARY = (
    ("cx_session", "keeps you signed in"),
    ("cx_csrf", "protects forms against cross-site request forgery"),
    ("cx_flash", "shows a one-time message on the next page"),
    ("cx_device", "recognises this device, so we can warn you of sign-ins from new ones"),
    ("cx_consent", "remembers your cookie choice (with a random visitor id for our record)"),
)
THEMES = ("light", "dark")

_VALUE = re.compile(r"^1\.([A-Za-z0-9_-]{16,40})\.([01])([01])$")


@dataclass(frozen=True)
class Choice:
    visitor: str
    preferences: bool
    analytics: bool

    def cookie_value(self) -> str:
        return f"1.{self.visitor}.{int(self.preferences)}{int(self.analytics)}"


@dataclass(frozen=True)
class Effective:
    """What applies to this request: the choice, overridden by GPC."""

    decided: bool
    preferences: bool
    analytics: bool
    gpc: bool

    @property
    def ask(self) -> bool:
        """Show the banner: no choice yet, and no GPC signal deciding for the visitor."""
        return not self.decided and not self.gpc


def gpc_requested(source: Any) -> bool:
    """``Sec-GPC: 1`` on a request (a Request, or a headers mapping)."""
    headers = getattr(source, "headers", source)
    return str(headers.get("sec-gpc", "")).strip() == "1"


def read_choice(cookies: dict[str, str]) -> Choice | None:
    match = _VALUE.match(cookies.get(CONSENT_COOKIE, ""))
    if match is None:
        return None
    return Choice(match.group(1), match.group(2) == "1", match.group(3) == "1")


def effective(cookies: dict[str, str], gpc: bool) -> Effective:
    choice = read_choice(cookies)
    if choice is None:
        return Effective(False, False, False, gpc)
    return Effective(True, choice.preferences and not gpc, choice.analytics and not gpc, gpc)


def new_visitor() -> str:
    return secrets.token_urlsafe(16)


async def record(
    db: AsyncSession,
    *,
    previous: Choice | None,
    preferences: bool,
    analytics: bool,
    gpc: bool,
    principal: Principal | None,
    ip: str | None,
) -> Choice:
    """Append the choice to the consent ledger (one record per optional category) and return it
    for the cookie. Under GPC every optional category is recorded as refused."""
    from connectx.policies import service as policies

    if gpc:
        preferences = analytics = False
    visitor = previous.visitor if previous is not None else new_visitor()
    person = principal is not None and principal.user_id is not None
    subject = f"user:{principal.user_id}" if person and principal else f"visitor:{visitor}"
    notice = (await policies.current("privacy", db)).key
    for purpose, granted in (("preferences", preferences), ("analytics", analytics)):
        await consent.record(
            db,
            subject=subject,
            workspace_id=None,
            purpose=purpose,
            channel="web",
            granted=granted,
            source="cookie_banner",
            wording=WORDING[purpose] + (" (Global Privacy Control was on.)" if gpc else ""),
            notice_version=notice,
            actor=subject,
            ip=ip,
        )
    return Choice(visitor, preferences, analytics)
