"""The timeline of a request: every step as an event row, and the same step in the audit log
(same transaction, ids and short codes only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.kit import clock
from connectx.models.data_request import DataRequest, DataRequestEvent
from connectx.privacy.requests import repository as repo


async def add(
    db: AsyncSession,
    req: DataRequest,
    action: str,
    actor: str,
    data: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
) -> DataRequestEvent:
    payload = {"request": req.id, "kind": req.kind, **(data or {})}
    event = DataRequestEvent(
        request_id=req.id,
        workspace_id=req.workspace_id,
        action=action,
        actor=actor,
        data=payload,
        at=clock.now(),
    )
    await repo.add(db, event)
    await audit.record(
        db,
        actor=actor,
        action=f"privacy_request.{action}",
        subject=req.subject or f"dsr:{req.id}",
        workspace_id=req.workspace_id,
        ip=ip,
        data=payload,
    )
    return event
