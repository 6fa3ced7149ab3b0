"""The consent ledger: append-only records; current state is derived, never stored."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.models.consent import ConsentRecord


def wording_hash(wording: str) -> str:
    return hashlib.sha256(wording.encode()).hexdigest()


async def record(
    db: AsyncSession,
    *,
    subject: str,
    workspace_id: int | None,
    purpose: str,
    channel: str,
    granted: bool,
    source: str,
    wording: str,
    notice_version: str,
    actor: str,
) -> ConsentRecord:
    """Append one consent decision (given or withdrawn) with the words the person saw."""
    entry = ConsentRecord(
        subject=subject,
        workspace_id=workspace_id,
        purpose=purpose,
        channel=channel,
        granted=granted,
        source=source,
        wording=wording,
        wording_hash=wording_hash(wording),
        notice_version=notice_version,
        actor=actor,
        created_at=clock.now(),
    )
    db.add(entry)
    await db.flush()
    return entry
