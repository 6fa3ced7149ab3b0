"""``/api/v1/channels/{id}/templates``: list, sync from Meta, submit new ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.models.template import WaTemplate
from connectx.templates_wa import service
from connectx.workspaces.access import allow

router = APIRouter(prefix="/api/v1/channels", tags=["templates"])
readers = allow("read", "owner", "admin", "agent")
admins = allow("admin", "owner", "admin")


class TemplateOut(BaseModel):
    id: int
    name: str
    language: str
    category: str
    status: str
    quality: str | None
    reason: str | None
    parameter_format: str
    components: list[Any]
    synced_at: datetime


def out(rows: list[WaTemplate]) -> list[TemplateOut]:
    return [TemplateOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/{channel_id}/templates", response_model=list[TemplateOut])
async def list_templates(
    channel_id: int,
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> list[TemplateOut]:
    return out(await service.list_for(db, principal, channel_id))


@router.post(
    "/{channel_id}/templates/sync",
    response_model=list[TemplateOut],
    dependencies=[Depends(csrf_protect)],
)
async def sync_templates(
    channel_id: int,
    principal: Principal = Depends(admins),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> list[TemplateOut]:
    return out(await service.sync(db, principal, channel_id))


@router.post(
    "/{channel_id}/templates",
    response_model=list[TemplateOut],
    status_code=201,
    dependencies=[Depends(csrf_protect)],
)
async def create_template(
    channel_id: int,
    body: dict[str, Any] = Body(...),
    principal: Principal = Depends(admins),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> list[TemplateOut]:
    return out(await service.create(db, principal, channel_id, body))
