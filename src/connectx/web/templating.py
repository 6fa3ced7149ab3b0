"""Jinja2 templates: each domain keeps its own under ``<domain>/templates``.

All template folders share one namespace: put a domain's pages in a sub-folder named after it
(``accounts/signin.html``); ``base.html`` and ``web/*`` belong to the web shell.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

PACKAGE = Path(__file__).resolve().parents[1]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _template_dirs() -> list[str]:
    return [str(p) for p in sorted(PACKAGE.glob("*/templates")) if p.is_dir()]


def mailto_links(text: str) -> Markup:
    """Escape ``text`` and turn the email addresses in it into mailto: links."""
    escaped = str(escape(text))
    return Markup(  # noqa: S704 - built from escaped text only
        _EMAIL.sub(lambda m: f'<a href="mailto:{m.group(0)}">{m.group(0)}</a>', escaped)
    )


def wait_time(seconds: int | float | str) -> str:
    """A Retry-After in words: "45 seconds", "about 3 minutes", "about 2 hours"."""
    try:
        s = max(1, int(float(seconds)))
    except (TypeError, ValueError):
        return "a little while"
    if s < 60:
        return f"{s} second{'s' if s != 1 else ''}"
    minutes = -(-s // 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


env = Environment(
    loader=FileSystemLoader(_template_dirs()),
    autoescape=select_autoescape(["html", "xml"]),
    enable_async=False,
    # Templates ship with the package and change only with a restart: without this, every
    # include of every page stats its file (a thread page has dozens of includes).
    auto_reload=False,
)
env.filters["mailto_links"] = mailto_links
env.filters["wait_time"] = wait_time
templates = Jinja2Templates(env=env)
