"""Record and verify the hash-chained audit log (pseudonymous ids only, house rule 8)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import repository as repo
from connectx.kit import clock
from connectx.models.audit import AuditEvent

GENESIS = "0" * 64


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


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


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
    """Append an event in the caller's transaction."""
    await repo.lock_chain(db)
    prev = await repo.last_hash(db) or GENESIS
    event = AuditEvent(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        subject=subject,
        ip_truncated=ip,
        reason=reason,
        data=data or {},
        created_at=clock.now().replace(microsecond=0),
        prev_hash=prev,
    )
    event.hash = chain_hash(prev, event)
    await repo.add(db, event)
    return event


@dataclass
class ChainReport:
    checked: int
    first_bad_id: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


async def verify(db: AsyncSession) -> ChainReport:
    """Walk the chain; name the first entry that was changed, inserted, removed or reordered."""
    prev = GENESIS
    checked = 0
    async for event in repo.stream(db):
        if event.prev_hash != prev:
            return ChainReport(
                checked,
                event.id,
                "does not follow the entry before it (an entry was removed, inserted or reordered)",
            )
        if chain_hash(prev, event) != event.hash:
            return ChainReport(checked, event.id, "its content was changed")
        prev = event.hash
        checked += 1
    return ChainReport(checked, None, None)
