"""What a real-time event is: a type, the workspace, ids and small render hints, never content.

Events carry only what every member who may open the event stream may see anyway: ids, statuses,
counts and short codes (no names, numbers, message text). The browser fetches what it renders.
An event addressed to one member (``user_id``) is delivered only to that member's streams.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from connectx.kit.numbers import is_digits

TYPES = frozenset(
    {
        "message.new",
        "message.status",
        "message.updated",
        "conversation.new",
        "conversation.assigned",
        "conversation.status",
        "conversation.updated",
        "conversation.read",
        "note.new",
        "notification.new",
        "contact.updated",
    }
)

Scalar = int | bool | str | None
_CODE = re.compile(r"^[a-z0-9_.:-]{0,40}$")


@dataclass(frozen=True)
class Event:
    workspace_id: int
    type: str
    data: dict[str, Scalar | list[int]] = field(default_factory=dict)
    user_id: int | None = None  # only this member's streams get it

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"unknown real-time event type {self.type!r}")
        for key, value in self.data.items():
            if isinstance(value, list):
                if not all(isinstance(v, int) for v in value):
                    raise ValueError(f"event data {key}: lists hold ids only")
            elif isinstance(value, str) and not _CODE.match(value):
                raise ValueError(f"event data {key}: strings are short codes, not content")
            elif not isinstance(value, int | bool | str | type(None)):
                raise ValueError(f"event data {key}: ids, flags and short codes only")

    def _plain(self) -> dict[str, Any]:
        return {"ws": self.workspace_id, "type": self.type, "data": self.data, "user": self.user_id}

    @classmethod
    def _of(cls, value: dict[str, Any]) -> Event:
        return cls(
            workspace_id=int(value["ws"]),
            type=str(value["type"]),
            data=dict(value.get("data") or {}),
            user_id=value.get("user"),
        )

    def encode(self) -> str:
        return json.dumps(self._plain(), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Event:
        return cls._of(json.loads(raw))

    @staticmethod
    def encode_many(events: list[Event]) -> bytes:
        """Events as one JSON array (one line: JSON escapes every newline in a string)."""
        return json.dumps([e._plain() for e in events], separators=(",", ":")).encode()

    @classmethod
    def decode_many(cls, raw: str | bytes) -> list[Event]:
        values = json.loads(raw)
        if not isinstance(values, list):
            raise ValueError("a list of events was expected")
        return [cls._of(value) for value in values]

    def visible_to(self, user_id: int | None) -> bool:
        return self.user_id is None or self.user_id == user_id


def parse_id(event_id: str | None) -> tuple[int, int] | None:
    """``"1764763200000-3"`` -> (1764763200000, 3); None when absent or malformed."""
    if not event_id:
        return None
    ms, sep, seq = event_id.strip().partition("-")
    if not sep or not is_digits(ms) or not is_digits(seq) or len(event_id) > 40:
        return None
    return int(ms), int(seq)


def format_id(key: tuple[int, int]) -> str:
    return f"{key[0]}-{key[1]}"


ZERO = (0, 0)
