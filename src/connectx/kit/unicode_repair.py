"""Unpaired surrogates in JSON we accepted and must keep (webhooks), replaced as UTF-8 decoders do.

Apart from :mod:`connectx.kit.text_guard` (which refuses such text at the door of the API), so
that the webhook processing process does not import the web framework for it.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def repaired(payload: Any, body: bytes) -> Any:
    """``payload`` (parsed from the JSON ``body``) with every unpaired surrogate in its strings
    replaced by U+FFFD, as UTF-8 decoders do: JSON may escape one (``"\\ud800"``), UTF-8 cannot
    hold it. For text we accepted and must keep (webhooks), not refuse. The walk runs only when
    ``body`` holds such an escape."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return payload
    return _repair(payload)


def _repair(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_repair(k): _repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair(v) for v in value]
    return value
