"""WhatsApp templates: sync from Meta (every page), list, and the parameter checks of sends
(``outbound/payloads.py``). Status, quality and category follow Meta: on every sync (when a
number is connected, every few hours, on demand) and from the template webhooks as they arrive
(:func:`apply_update`); ``reason`` says why a template was rejected, paused or disabled."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.channels import service as channels
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.channel import Channel, TemplateUpdate
from connectx.models.template import WaTemplate
from connectx.outbound import graph
from connectx.outbound import repository as repo


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta_id": str(item.get("id") or "") or None,
        "category": str(item.get("category") or "UTILITY").upper()[:32],
        "status": str(item.get("status") or "PENDING").upper()[:32],
        "quality": str((item.get("quality_score") or {}).get("score") or "")[:32] or None,
        "reason": _listed_reason(item),
        "parameter_format": str(item.get("parameter_format") or "POSITIONAL").upper()[:16],
        "components": list(item.get("components") or []),
    }


def _listed_reason(item: dict[str, Any]) -> str | None:
    """Why a listed template is not approved (Meta lists ``rejected_reason: NONE`` otherwise)."""
    reason = str(item.get("rejected_reason") or "")
    return reason[:500] if reason and reason.upper() != "NONE" else None


async def sync(db: AsyncSession, principal: Principal, channel_id: int) -> list[WaTemplate]:
    """Fetch every template of the number's WABA from Meta and store them (upsert)."""
    assert principal.workspace_id is not None
    channel = await channels_repo.get(db, principal.workspace_id, channel_id)
    return await sync_channel(db, channel, principal.actor, principal.ip)


async def sync_channel(
    db: AsyncSession, channel: Channel, actor: str, ip: str | None = None
) -> list[WaTemplate]:
    """Every template of ``channel``'s WABA, fetched page by page and stored (upsert)."""
    ws = channel.workspace_id
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
            fields = _fields(item)
            if fields["reason"] is None and row.status == fields["status"]:
                fields["reason"] = row.reason  # a webhook's fuller reason (a pause) is kept
            for key, value in fields.items():
                setattr(row, key, value)
            row.synced_at = row.updated_at = now
    await db.flush()
    await audit.record(
        db,
        actor=actor,
        action="templates.synced",
        subject=f"channel:{channel.id}",
        workspace_id=ws,
        ip=ip,
        data={"templates": len(items)},
    )
    return await repo.templates(db, ws, channel.waba_id)


# Meta's template events and the status they leave the template in.
_EVENT_STATUS = {"REINSTATED": "APPROVED", "UNPAUSED": "APPROVED"}


def _why(value: dict[str, Any], event: str) -> str | None:
    """A person-readable reason for REJECTED / PAUSED / DISABLED / FLAGGED (none otherwise)."""
    if event in ("APPROVED", "REINSTATED", "UNPAUSED", "PENDING"):
        return None
    parts: list[str] = []
    reason = str(value.get("reason") or "")
    if reason and reason.upper() != "NONE":
        parts.append(reason)
    for key in ("rejection_info", "other_info", "disable_info"):
        info = value.get(key)
        if isinstance(info, dict):
            parts.extend(
                str(info[k])
                for k in ("reason", "title", "description", "recommendation")
                if info.get(k)
            )
    return "; ".join(dict.fromkeys(parts))[:500] or None


async def apply_update(db: AsyncSession, update: TemplateUpdate) -> int:
    """Apply a template webhook Meta sent (status, quality or category) to the stored template;
    a template not known here yet is fetched by a sync job. How many rows changed."""
    if update.workspace_id is None:
        return 0
    rows = await repo.templates_matching(
        db,
        update.workspace_id,
        update.waba_id,
        update.template_id,
        update.template_name,
        update.language,
    )
    if not rows:
        channel = await repo.channel_of_waba(db, update.workspace_id, update.waba_id)
        if channel is not None:
            await enqueue_sync(db, channel.id)
        return 0
    now = clock.now()
    value = update.value if isinstance(update.value, dict) else {}
    for row in rows:
        if update.field == "message_template_status_update" and update.event:
            event = update.event.upper()
            row.status = _EVENT_STATUS.get(event, event)[:32]
            row.reason = _why(value, event)
        elif update.field == "message_template_quality_update" and update.new_quality:
            row.quality = update.new_quality.upper()[:32]
        elif update.field == "template_category_update" and update.new_category:
            row.category = update.new_category.upper()[:32]
        row.updated_at = now
    await audit.record(
        db,
        actor="system:meta",
        action="templates.updated",
        subject=f"workspace:{update.workspace_id}",
        workspace_id=update.workspace_id,
        data={"templates": [r.id for r in rows], "field": update.field},
    )
    return len(rows)


async def enqueue_sync(db: AsyncSession, channel_id: int) -> None:
    """A background sync of the number's templates (``templates.sync``), after commit."""
    from connectx.jobs.queue import enqueue

    await enqueue(db, "templates.sync", {"channel_id": channel_id}, max_attempts=5)


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
