"""Coarse device and location facts from a request: browser, system, device class, country.

No fingerprinting: the browser and system come from the User-Agent header, reduced to a family
name ("Firefox", "Android"); the device class to desktop, mobile, tablet or bot. The country is
known only when a trusted proxy in front of ConnectX sets a header for it (``CONNECTX_COUNTRY_
HEADER``, e.g. ``CF-IPCountry``); there is no GeoIP database, so otherwise it stays unknown. A
device is recognised by a random id in the strictly necessary ``cx_device`` cookie (security).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request

from connectx.config import get_settings

DEVICE_COOKIE = "cx_device"
DEVICE_COOKIE_DAYS = 400

_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
    ("HTTP client", re.compile(r"python-httpx|python-requests|aiohttp|okhttp|Go-http-client")),
]
_SYSTEMS = [
    ("iPadOS", re.compile(r"iPad")),
    ("iOS", re.compile(r"iPhone|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
]
_BOT = re.compile(r"bot\b|crawler|spider|HeadlessChrome|curl/|python-|Go-http-client", re.I)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)")
_MOBILE = re.compile(r"Mobile|iPhone|iPod|Android.*Mobile|Windows Phone")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NOT_COUNTRIES = {"XX", "T1", "ZZ"}  # unknown, Tor, "no country" codes some proxies send


@dataclass(frozen=True)
class Device:
    browser: str
    os: str
    device_class: str  # desktop | mobile | tablet | bot | unknown

    @property
    def label(self) -> str:
        return f"{self.browser} on {self.os} ({self.device_class})"


def parse(user_agent: str | None) -> Device:
    if not user_agent:
        return Device("Unknown browser", "unknown system", "unknown")
    browser = next((name for name, rx in _BROWSERS if rx.search(user_agent)), "Other browser")
    system = next((name for name, rx in _SYSTEMS if rx.search(user_agent)), "other system")
    if _BOT.search(user_agent):
        kind = "bot"
    elif _TABLET.search(user_agent):
        kind = "tablet"
    elif _MOBILE.search(user_agent):
        kind = "mobile"
    else:
        kind = "desktop"
    return Device(browser, system, kind)


def of_request(request: Request | None) -> Device:
    return parse(request.headers.get("user-agent") if request is not None else None)


def country(request: Request | None) -> str | None:
    """ISO 3166 alpha-2 from the configured proxy header, or None (unknown)."""
    header = get_settings().country_header
    if request is None or not header:
        return None
    value = (request.headers.get(header) or "").strip().upper()
    if not _COUNTRY.match(value) or value in _NOT_COUNTRIES:
        return None
    return value
