"""What processing transactions keep between them: the live channels of the numbers they saw,
the suspended workspaces, the workspaces' keyword matchers.

Each processing transaction used to read them (three statements of a fixed part that is most
of processing's cost at low rates). Now it reads one value, the ``processing`` generation
(``config_generations``), which triggers replace with a new random value on any change to
``channels``, ``workspace_suspensions`` or ``consent_keywords`` (migration 0008p), whoever makes
it: another process, the API, the CLI, SQL by hand. A generation other than the one the cache
was filled under empties it. The generation is read in the transaction before anything cached
is used, so what a transaction uses is at least as new as what it would have read itself. The
cache belongs to an engine (a processor thread or process has its own); without the
generation's row nothing is kept.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from connectx.channels import repository as channels_repo
from connectx.intake import repository as repo
from connectx.models.channel import Channel
from connectx.privacy.keywords import Matcher, keyword_sets


@dataclass
class Held:
    """What one generation of the configuration says (filled as transactions ask)."""

    generation: int | None
    # by phone number id: the live channel's column values (None: no live channel), not the
    # ORM object, which belongs to the session that read it (and is expired if it rolled back)
    channels: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    suspended: frozenset[int] | None = None
    matchers: dict[int, Matcher] = field(default_factory=dict)  # by workspace


_held: weakref.WeakKeyDictionary[Any, Held] = weakref.WeakKeyDictionary()


class Configuration:
    """One transaction's view of the cached configuration (:func:`for_transaction`)."""

    def __init__(self, db: AsyncSession, held: Held) -> None:
        self.db = db
        self.held = held

    async def live_channels(self, numbers: set[str]) -> dict[str, Channel]:
        """The live channel of each of these phone number ids that has one, attached to this
        transaction's session (copied in, no query, when known)."""
        channels = self.held.channels
        out: dict[str, Channel] = {}
        missing = [n for n in numbers if n not in channels]
        if missing:
            found = await channels_repo.live_channels_for_numbers(self.db, missing)
            for number in missing:
                channel = found.get(number)
                channels[number] = None if channel is None else _values(channel)
                if channel is not None:
                    out[number] = channel
        for number in numbers:
            values = channels.get(number)
            if values is not None and number not in out:  # read in an earlier transaction
                copy = Channel(**values)
                make_transient_to_detached(copy)
                out[number] = await self.db.merge(copy, load=False)  # (no query)
        return out

    async def suspended_among(self, workspace_ids: set[int]) -> set[int]:
        if not workspace_ids:
            return set()
        if self.held.suspended is None:
            self.held.suspended = await repo.suspended_workspaces(self.db)
        return set(workspace_ids & self.held.suspended)

    async def matcher(self, workspace_id: int) -> Matcher:
        found = self.held.matchers.get(workspace_id)
        if found is None:
            found = self.held.matchers[workspace_id] = Matcher(
                await keyword_sets(self.db, workspace_id)
            )
        return found


def _values(channel: Channel) -> dict[str, Any]:
    return {attr.key: getattr(channel, attr.key) for attr in _COLUMNS}


_COLUMNS = list(sa_inspect(Channel).column_attrs)


async def for_transaction(db: AsyncSession) -> Configuration:
    """The cached configuration for a transaction of ``db`` (one statement: the generation)."""
    generation = await repo.processing_generation(db)
    engine = db.bind
    held = _held.get(engine) if generation is not None else None
    if held is None or held.generation != generation:
        held = Held(generation)
        if generation is not None:
            _held[engine] = held
    return Configuration(db, held)
