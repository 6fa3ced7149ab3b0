"""Raw webhook bodies of an erased person, live and in earlier backups.

Raw bodies are sealed under a key per day (``webhook_day:<YYYY-MM-DD>``): at intake nobody knows
yet whom a body is about. An erasure clears the live bodies that mention the person
(:func:`scrub`), but an earlier backup keeps its copy, readable with that day's key. So for every
day whose bodies mentioned them, the day key is *retired*:

1. the day gets a new key version (:meth:`Vault.add_version`): intake seals under it from now
   on, this process at once, every other within the key cache TTL;
2. every other live body of that day sealed under a retired version is re-sealed under the new
   one, in the erasure's transaction (the same plaintext: a processor reading it meanwhile is
   unaffected);
3. the job ``privacy.retire_webhook_key``, due once no process can still seal under the old
   version (the cache TTL plus a margin), re-seals what was sealed under it meanwhile and then
   destroys it (audited ``keys.subject_destroyed``; a key-store restore destroys it again).

From then on, the copies of that day's raw bodies in every earlier backup are unreadable: the
erased person's and, as the price of a shared key, everyone else's of that day (they were
processed into messages sealed under each person's own key, which those backups still open;
docs/privacy-rights.md, "Decisions"). Days with no live raw body left (retention deleted them)
lose their key at the same time: nothing live needs it, and backups may still hold the bodies.
Without any erasure, the retention run destroys the keys of days past the raw-body retention the
same way (:mod:`connectx.retention.day_keys`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.intake.raw_body import open_body, seal_many
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.kit.crypto import CryptoError, key_id_of
from connectx.privacy.rights import repository as repo
from connectx.privacy.vault import Vault

TASK = "privacy.retire_webhook_key"
PREFIX = "webhook_day:"
MARGIN = timedelta(seconds=60)  # beyond the key cache TTL: a batch sealed just before commits
PAGE = 500


def _day_range(subject: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(subject.removeprefix(PREFIX), "%Y-%m-%d").replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


async def scrub(db: AsyncSession, identifiers: list[str], *, actor: str) -> int:
    """Clear the sealed bodies of processed raw webhooks that mention any of ``identifiers``
    (they are kept 14 days for inspection; an erased person's are not), and retire the keys of
    their days so that earlier backups' copies become unreadable. Returns the bodies cleared."""
    from connectx.intake.batcher import day_subject

    if not identifiers:
        return 0
    # As JSON strings, in the bytes of the body (which need not be UTF-8): "971501234987"
    needles = [json.dumps(i).encode() for i in identifiers]
    vault = Vault(db)
    hits: list[int] = []
    days: dict[str, set[int]] = defaultdict(set)
    after = 0
    while page := await repo.processed_webhook_bodies(db, after, PAGE):
        for event_id, received_at, blob in page:
            after = event_id
            subject = day_subject(received_at)
            try:
                body = await open_body(vault, subject, blob)
            except CryptoError:
                continue  # that day's key is gone already
            if any(n in body for n in needles):
                hits.append(event_id)
                days[subject].add(key_id_of(blob))
    cleared = await repo.clear_webhook_bodies(db, hits)
    for subject, key_ids in sorted(days.items()):
        await retire(db, subject, sorted(key_ids), actor=actor)
    return cleared


async def _reseal(db: AsyncSession, subject: str, key_ids: set[int]) -> int:
    """Re-seal the day's live bodies sealed under ``key_ids`` with its current key."""
    vault = Vault(db)
    start, end = _day_range(subject)
    moved = 0
    after: tuple[datetime, int] | None = None
    while page := await repo.webhook_bodies_between(db, start, end, after, PAGE):
        for event_id, received_at, blob in page:
            after = (received_at, event_id)
            if key_id_of(blob) not in key_ids:
                continue
            plain = await open_body(vault, subject, blob)
            (sealed,) = await seal_many(vault, subject, [plain])  # (compressed from here on)
            if key_id_of(sealed) in key_ids:
                raise CryptoError(f"{subject} has no newer key to re-seal under")
            moved += await repo.set_webhook_body(db, event_id, blob, sealed)
    return moved


async def retire(db: AsyncSession, subject: str, key_ids: list[int], *, actor: str) -> None:
    """Start retiring ``key_ids`` of a day (steps 1 and 2 above) and queue step 3."""
    await Vault(db).add_version(None, subject)
    await _reseal(db, subject, set(key_ids))
    due = clock.now() + timedelta(seconds=get_settings().key_cache_ttl_s) + MARGIN
    await enqueue(db, TASK, {"subject": subject, "key_ids": key_ids, "actor": actor}, run_after=due)


async def finish(db: AsyncSession, subject: str, key_ids: list[int], actor: str) -> int:
    """Step 3 (the job; idempotent): re-seal stragglers, destroy the retired versions, and the
    keys of past days with no live body left. Returns how many keys were destroyed."""
    if not subject.startswith(PREFIX):
        return 0
    await _reseal(db, subject, set(key_ids))
    vault = Vault(db)
    destroyed = len(await vault.destroy_keys(None, subject, key_ids, actor=actor))
    yesterday = (clock.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    for day in (await idle_days(db, yesterday)).due:
        destroyed += await vault.destroy_subject(None, day, actor=actor)
    return destroyed


@dataclass(frozen=True)
class IdleDays:
    due: list[str]  # day keys nothing needs any more: destroy them
    held: list[str]  # as idle, but kept while a legal hold is in force


async def idle_days(db: AsyncSession, before: str) -> IdleDays:
    """Day keys (``webhook_day:<date>``) still holding material, of days before ``before``
    (``YYYY-MM-DD``), whose day has no live raw body any more (retention deleted them, or an
    erasure cleared them): nothing live needs those keys. A day with a body still live (pending,
    held for a suspended workspace, failed, or processed and not yet past retention) keeps it.

    Legal holds: a day key is shared by every workspace and person whose webhooks arrived that
    day and cannot be destroyed for some of them only, so while any hold is in force every idle
    day is ``held``, none ``due``. Every destroyer of idle day keys (the retention run's step,
    the erasure job) goes through here."""
    from connectx.privacy import keys_repository as keys
    from connectx.privacy import keystore

    async with keystore.session() as ks:
        days = [
            d for d in await keys.live_subjects_like(ks, PREFIX) if d.removeprefix(PREFIX) < before
        ]
    idle = []
    for day in days:  # one indexed probe per live day key (a handful), not every body's time
        start, end = _day_range(day)
        if not await repo.webhook_body_between(db, start, end):
            idle.append(day)
    if idle and await repo.any_active_hold(db):
        return IdleDays([], idle)
    return IdleDays(idle, [])
