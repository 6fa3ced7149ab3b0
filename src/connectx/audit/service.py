"""Record and verify the hash-chained audit log (pseudonymous ids only, house rule 8).

Each entry stores the hash of the entry before it and its own hash: an HMAC-SHA-256, under the
audit chain key (kept in the key store, not in the data database), of the previous hash and the
entry's canonical JSON. Someone who can rewrite the data database can change, delete, insert or
reorder rows but cannot compute the hashes that would hide it; :func:`verify` names the first
entry that does not check out. The head of the chain as last verified is saved in the key store
(:func:`checkpoint`), so cutting entries off the end is noticed too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from connectx.audit import checkpoint_repository as checkpoints
from connectx.audit import repository as repo
from connectx.kit import clock
from connectx.kit.redaction import redact
from connectx.models.audit import AuditEvent
from connectx.privacy import keystore
from connectx.privacy.vault import audit_chain_key

GENESIS = "0" * 64

# "user:12", "api_key:3", "contact:5", "invitation:7", "ws:2"; or a bare role word.
_REF = re.compile(r"^(?:[a-z][a-z_]{0,30}:[A-Za-z0-9_-]{1,40}|system|operator|anonymous)$")
_PERSONAL = re.compile(r"@|\b[A-Za-z0-9_-]{32,}\b")  # an e-mail address or a long secret


def is_ref(value: str) -> bool:
    """Whether ``value`` is a pseudonymous id as actors and subjects are recorded."""
    return bool(_REF.match(value))


def canonical(event: AuditEvent) -> str:
    return json.dumps(
        {
            "workspace_id": event.workspace_id,
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "ip": event.ip_truncated,
            "reason": event.reason,
            "data": event.data,
            "at": event.created_at.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def chain_hash(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    return hmac.new(key, (prev_hash + canonical(event)).encode(), hashlib.sha256).hexdigest()


def truncate_ip(ip: str | None) -> str | None:
    """Keep the network, drop the host: IPv4 to /24, IPv6 to /48."""
    if not ip:
        return None
    try:  # an address, or a network already truncated by the request ("203.0.113.0/24")
        net = ipaddress.ip_network(ip.strip(), strict=False)
    except ValueError:
        return None
    prefix = min(net.prefixlen, 24 if net.version == 4 else 48)
    return str(net.supernet(new_prefix=prefix).network_address)


def _check_pseudonymous(actor: str, subject: str | None, data: dict[str, Any]) -> None:
    """Refuse (a programming error, not bad input) anything that looks like personal data."""
    if not _REF.match(actor):
        raise ValueError("audit actor must be an id like 'user:12', 'system' or 'operator'")
    if subject is not None and not _REF.match(subject):
        raise ValueError("audit subject must be an id like 'user:12'")

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif isinstance(value, float):
            raise ValueError(f"audit data {path}: use integers (floats do not hash stably)")
        elif isinstance(value, str) and _PERSONAL.search(value):
            raise ValueError(f"audit data {path} must not hold personal data or secrets")
        elif not isinstance(value, str | int | bool | type(None)):
            raise ValueError(f"audit data {path}: only ids, counts, flags and short codes")

    walk(data, "data")


def _entry(
    actor: str,
    action: str,
    subject: str | None,
    workspace_id: int | None,
    ip: str | None,
    reason: str | None,
    data: dict[str, Any] | None,
) -> AuditEvent:
    """An entry, not chained yet, with its inputs checked (ids only) and reduced (ip, reason)."""
    data = data or {}
    _check_pseudonymous(actor, subject, data)
    if reason is not None:  # typed by a person: keep the why, mask what identifies anyone
        reason = redact(reason).strip()[:200] or None
    return AuditEvent(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        subject=subject,
        ip_truncated=truncate_ip(ip),
        reason=reason,
        data=data,
        created_at=clock.now().replace(microsecond=0),
    )


async def record(
    db: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    workspace_id: int | None = None,
    ip: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction (it commits or rolls back with the act).

    ``actor`` and ``subject`` are ids ("user:12", "api_key:3"), ``ip`` is truncated here,
    ``data`` holds ids, counts and codes only (anything else is a programming error), and a
    ``reason`` a person typed is kept with e-mail addresses, phone numbers and secrets masked.

    The entry is chained and written when the transaction commits (:func:`write_pending_sync`),
    after everything else it changed is flushed: the chain's lock is the last lock every
    transaction takes, so no transaction holds it while it waits for a row another holds (an
    erasure that audits and then updates a contact's messages, beside a worker that updates
    one of them and then audits, deadlocked on PostgreSQL when the chain was locked at once)."""
    event = _entry(actor, action, subject, workspace_id, ip, reason, data)
    repo.defer(db, event, await audit_chain_key())
    return event


async def record_view(
    db: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    workspace_id: int | None = None,
    ip: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Record a read of personal data (``conversation.viewed``, ``messages.viewed``, ...), as
    :func:`record` records an act: all the views a page records go to the chain in one INSERT
    when its transaction commits, after one head read (a thread page records three)."""
    await record(
        db, actor=actor, action=action, subject=subject, workspace_id=workspace_id, ip=ip, data=data
    )


def write_pending_sync(session: Session) -> None:
    """Chain and write the entries :func:`record` and :func:`record_view` deferred, in the
    order they were recorded, after the chain's head (locked and read once per transaction).
    The transaction's other changes are flushed first, so their row locks are taken before the
    chain's lock, never while it is held."""
    pending = repo.pending_events(session)
    if not pending:
        return
    session.flush()
    prev = repo.chain_head_sync(session) or GENESIS
    for event, key in pending:
        event.prev_hash = prev
        event.hash = prev = chain_hash(key, prev, event)
    repo.add_all_sync(session, [event for event, _ in pending])


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Runs inside the async session's commit (greenlet), so the sync API is usable here."""
    write_pending_sync(session)


@dataclass
class ChainReport:
    checked: int
    first_bad_id: int | None
    problem: str | None
    # When retention pruned the oldest entries: the last entry removed (the chain starts after).
    starts_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None and self.problem is None

    def describe(self) -> str:
        if self.ok:
            pruned = (
                f" (older entries, up to {self.starts_after}, were pruned by retention)"
                if self.starts_after is not None
                else ""
            )
            return f"OK: {self.checked} audit entries verified{pruned}"
        where = f"entry {self.first_bad_id}" if self.first_bad_id is not None else "the log"
        return f"FAILED at {where}: {self.problem} ({self.checked} entries before it verified)"


def _start(anchors: list[tuple[int, str, int]], first_id: int) -> tuple[str, int | None]:
    """What the first entry left must follow: the last entry retention pruned before it (the
    anchor recorded in the key store), or the genesis."""
    before = [a for a in anchors if a[0] < first_id]
    return (before[-1][1], before[-1][0]) if before else (GENESIS, None)


async def verify(db: AsyncSession) -> ChainReport:
    """Walk the chain; name the first entry that was changed, inserted, removed or reordered,
    and check that the head saved by the last :func:`checkpoint` is still there. After
    retention pruned the oldest entries, the chain starts at the anchor it left in the key
    store (:func:`prune_anchor`): cutting more off the start than that is noticed too."""
    key = await audit_chain_key()
    prev: str | None = None
    starts_after: int | None = None
    checked = 0
    seen_checkpoint = False
    mark = await _last_checkpoint()
    async with keystore.session() as ks:
        anchors = await checkpoints.anchors(ks)
    anchored = {a[0]: a[1] for a in anchors}
    async for event in repo.stream(db):
        if prev is None:
            prev, starts_after = _start(anchors, event.id)
        if event.prev_hash != prev:
            return ChainReport(
                checked,
                event.id,
                "does not follow the entry before it (an entry was removed, inserted or reordered)",
                starts_after,
            )
        if not hmac.compare_digest(chain_hash(key, prev, event), event.hash):
            return ChainReport(
                checked, event.id, "its content was changed or it was forged", starts_after
            )
        if event.id in anchored and event.hash != anchored[event.id]:
            return ChainReport(
                checked, event.id, "differs from the entry retention pruned up to", starts_after
            )
        if mark is not None and event.id == mark[0]:
            if event.hash != mark[1]:
                return ChainReport(
                    checked, event.id, "differs from the last verified head", starts_after
                )
            seen_checkpoint = True
        prev = event.hash
        checked += 1
    pruned_mark = mark is not None and anchors and mark[0] <= anchors[-1][0]
    if mark is not None and not seen_checkpoint and not pruned_mark:
        return ChainReport(
            checked,
            None,
            f"entry {mark[0]}, the head at the last verification ({mark[2]} entries), is "
            "missing: entries were removed from the end",
            starts_after,
        )
    return ChainReport(checked, None, None, starts_after)


async def prune_anchor(up_to_id: int, hash_: str, pruned: int) -> None:
    """Record in the key store that retention removes the entries up to ``up_to_id`` (whose
    hash is ``hash_``): the chain then starts after it. Written before the entries go (its own
    key-store transaction), so a crash in between leaves the log verifiable."""
    async with keystore.session() as ks:
        await checkpoints.add_anchor(ks, up_to_id, hash_, pruned)


async def checkpoint(db: AsyncSession, report: ChainReport) -> None:
    """Save the verified head in the key store (after a successful :func:`verify`)."""
    if not report.ok:
        return
    head = await repo.head(db)
    if head is None:
        return
    async with keystore.session() as ks:
        await checkpoints.add(ks, head.id, head.hash, report.checked)


async def _last_checkpoint() -> tuple[int, str, int] | None:
    async with keystore.session() as ks:
        return await checkpoints.last(ks)


async def list_for_workspace(
    db: AsyncSession, workspace_id: int, *, before_id: int | None = None, limit: int = 50
) -> Sequence[AuditEvent]:
    """Newest first, for an admin's view of their workspace's log (pages of ``limit``)."""
    return await repo.for_workspace(db, workspace_id, before_id, min(max(limit, 1), 500))
