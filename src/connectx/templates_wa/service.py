"""WhatsApp templates: sync from Meta (every page), list, and the parameter checks of sends
(``outbound/payloads.py``). Status, quality and category follow Meta on every sync."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal
from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.channels import service as channels
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.template import WaTemplate
from connectx.outbound import graph
from connectx.outbound import repository as repo


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta_id": str(item.get("id") or "") or None,
        "category": str(item.get("category") or "UTILITY").upper()[:32],
        "status": str(item.get("status") or "PENDING").upper()[:32],
        "quality": str((item.get("quality_score") or {}).get("score") or "")[:32] or None,
        "reason": (str(item.get("rejected_reason") or "") or None),
        "parameter_format": str(item.get("parameter_format") or "POSITIONAL").upper()[:16],
        "components": list(item.get("components") or []),
    }


async def sync(db: AsyncSession, principal: Principal, channel_id: int) -> list[WaTemplate]:
    """Fetch every template of the number's WABA from Meta and store them (upsert)."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    channel = await channels_repo.get(db, ws, channel_id)
    token = await channels.access_token(db, channel)
    if not token:
        raise Conflict("This number has no access token; reconnect it.")
    try:
        items = await graph.list_templates(channel.waba_id, token)
    except graph.GraphError as exc:
        raise Conflict(f"Meta refused the template list: {exc.title} ({exc.code}).") from exc
    now = clock.now()
    for item in items:
        name, language = str(item.get("name") or ""), str(item.get("language") or "")
        if not name or not language:
            continue
        row = await repo.template(db, ws, channel.waba_id, name, language)
        if row is None:
            row = WaTemplate(
                workspace_id=ws,
                waba_id=channel.waba_id,
                name=name,
                language=language,
                synced_at=now,
                updated_at=now,
                **_fields(item),
            )
            await repo.add(db, row)
        else:
            for key, value in _fields(item).items():
                if key == "reason" and value in (None, "NONE"):
                    value = row.reason if row.status == _fields(item)["status"] else None
                setattr(row, key, value)
            row.synced_at = row.updated_at = now
    await db.flush()
    await audit.record(
        db,
        actor=principal.actor,
        action="templates.synced",
        subject=f"channel:{channel.id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"templates": len(items)},
    )
    return await repo.templates(db, ws, channel.waba_id)


async def list_for(db: AsyncSession, principal: Principal, channel_id: int) -> list[WaTemplate]:
    assert principal.workspace_id is not None
    channel = await channels_repo.get(db, principal.workspace_id, channel_id)
    return await repo.templates(db, principal.workspace_id, channel.waba_id)


async def create(
    db: AsyncSession, principal: Principal, channel_id: int, body: dict[str, Any]
) -> list[WaTemplate]:
    """Submit a new template to Meta for review, then sync (its status arrives later)."""
    assert principal.workspace_id is not None
    channel = await channels_repo.get(db, principal.workspace_id, channel_id)
    name = str(body.get("name") or "")
    if not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise InvalidInput("Template names are lowercase letters, digits and _.", field="name")
    if str(body.get("category", "")).upper() not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
        raise InvalidInput("category: MARKETING, UTILITY or AUTHENTICATION.", field="category")
    token = await channels.access_token(db, channel)
    if not token:
        raise Conflict("This number has no access token; reconnect it.")
    try:
        await graph.create_template(channel.waba_id, token, body)
    except graph.GraphError as exc:
        raise InvalidInput(f"Meta refused the template: {exc.title} ({exc.code}).") from exc
    return await sync(db, principal, channel_id)
