"""Template status, quality and category updates, recorded once each and applied to the stored
templates (``templates_wa.service.apply_update``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.integrations.whatsapp.schemas import Change, text
from connectx.kit import clock
from connectx.kit.upsert import insert_ignore
from connectx.models.channel import TemplateUpdate


def _dedup_key(change: Change) -> str:
    canonical = json.dumps(
        {"waba": change.waba_id, "field": change.field, "value": change.value},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cut(value: Any, size: int) -> str | None:
    found = text(value)
    return found[:size] if found else None


async def record(db: AsyncSession, change: Change, workspace_id: int | None) -> bool:
    """Store the update unless it was stored before (Meta redelivers). True when new."""
    value = change.value
    values = {
        "workspace_id": workspace_id,
        "waba_id": (change.waba_id or "")[:64],
        "field": change.field[:64],
        "template_id": _cut(value.get("message_template_id"), 64),
        "template_name": _cut(value.get("message_template_name"), 512),
        "language": _cut(value.get("message_template_language"), 16),
        "event": _cut(value.get("event"), 64),
        "reason": _cut(value.get("reason"), 500),
        "new_quality": _cut(value.get("new_quality_score"), 32),
        "new_category": _cut(value.get("new_category"), 32),
        "value": value,
        "dedup_key": _dedup_key(change),
        "created_at": clock.now(),
    }
    stmt = insert_ignore(db, TemplateUpdate, values).returning(TemplateUpdate.id)
    new_id = (await db.execute(stmt)).scalar_one_or_none()
    if new_id is None:
        return False
    from connectx.templates_wa.service import apply_update  # the template feature keeps current

    update = await db.get(TemplateUpdate, new_id)
    assert update is not None
    await apply_update(db, update)
    return True
