"""Message text for a chat thread (the inbox, the simulator's phone page): escaped, with web links
made clickable (and nothing else).

Only ``http``/``https`` URLs and ``www.`` hosts become links; they open in a new tab with
``rel="noopener noreferrer nofollow ugc"`` so a customer's link can neither reach back into the
inbox nor learn its address. Trailing punctuation stays outside the link.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_URL = re.compile(r"(?i)\b((?:https?://|www\.)[^\s<>\"'`]+)")
_TRAILING = ".,;:!?)]}'\""
MAX_LINK_TEXT = 80


def _split_trailing(url: str) -> tuple[str, str]:
    tail = ""
    while url and url[-1] in _TRAILING:
        # Keep a closing parenthesis that closes one opened inside the URL (wiki links).
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        tail = url[-1] + tail
        url = url[:-1]
    return url, tail


def linkify(text: str | None) -> Markup:
    """``text`` escaped for HTML, with its web links as ``<a>`` elements."""
    if not text:
        return Markup("")
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url, _tail = _split_trailing(match.group(1))
        if not url or url.lower() in ("http://", "https://", "www."):
            continue
        out.append(str(escape(text[last : match.start(1)])))
        href = url if url.lower().startswith("http") else f"https://{url}"
        shown = url if len(url) <= MAX_LINK_TEXT else url[: MAX_LINK_TEXT - 1] + "…"
        out.append(
            f'<a href="{escape(href)}" target="_blank" rel="noopener noreferrer nofollow ugc">'
            f"{escape(shown)}</a>"
        )
        last = match.start(1) + len(url)
    out.append(str(escape(text[last:])))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped
