"""JSON API for a workspace's owners and admins (or an ``admin`` API key): file a request on
behalf of a customer, list, read, approve, refuse, extend; the workspace's privacy settings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import InvalidInput
from connectx.models.data_request import PrivacySettings
from connectx.privacy.requests import intake, service, settings
from connectx.privacy.requests import repository as repo
from connectx.privacy.requests.schemas import (
    ExtendIn,
    KeywordIn,
    RefuseIn,
    RequestIn,
    RequestOut,
    SettingsIn,
    SettingsOut,
)
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(
    prefix="/api/v1", tags=["privacy requests"], dependencies=[Depends(csrf_protect)]
)
DB = Depends(db_session, scope="function")
manager = allow("admin", *MANAGERS)
STATUSES = ("open", "closed", "unverified", "pending", "completed", "refused", "lapsed")


async def _one(db: AsyncSession, principal: Principal, request_id: int) -> RequestOut:
    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    return RequestOut.of(await service.detail(db, req))


@router.post(
    "/privacy/requests", response_model=RequestOut, status_code=201, summary="File a request"
)
async def file_request(
    body: RequestIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> RequestOut:
    """File a data-subject request for one of the workspace's customers. The 30-day clock
    starts now."""
    filed = await intake.on_behalf_of_contact(
        db,
        principal,
        contact_id=body.contact_id,
        kind=body.kind,
        details=body.details,
        params=body.params,
        identity_checked=body.identity_checked,
    )
    return await _one(db, principal, filed.request.id)


@router.get("/privacy/requests", response_model=list[RequestOut], summary="List requests")
async def list_requests(
    status: str | None = Query(None, description="open, closed, or one status"),
    contact_id: int | None = Query(None),
    before_id: int | None = Query(None),
    limit: int = Query(50, ge=1, le=200),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> list[RequestOut]:
    assert principal.workspace_id is not None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}.", field="status")
    rows = await repo.list_in_workspace(
        db,
        principal.workspace_id,
        status=status,
        subject=f"contact:{contact_id}" if contact_id is not None else None,
        before_id=before_id,
        limit=limit,
    )
    return [RequestOut.of(service.summary(r)) for r in rows]


@router.get("/privacy/requests/{request_id}", response_model=RequestOut, summary="One request")
async def get_request(
    request_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> RequestOut:
    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    await service.record_view(db, req, actor=principal.actor, ip=principal.ip)
    return RequestOut.of(await service.detail(db, req))


@router.post(
    "/privacy/requests/{request_id}/approve",
    response_model=RequestOut,
    summary="Approve and carry out",
)
async def approve(
    request_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> RequestOut:
    """Carry out a verified request now; the customer is told the outcome."""
    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    await service.approve(db, req, actor=principal.actor, ip=principal.ip)
    return await _one(db, principal, request_id)


@router.post("/privacy/requests/{request_id}/refuse", response_model=RequestOut, summary="Refuse")
async def refuse(
    request_id: int, body: RefuseIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> RequestOut:
    """Refuse with reasons; the customer is told them and how to complain."""
    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    await service.refuse(db, req, actor=principal.actor, reason=body.reason, ip=principal.ip)
    return await _one(db, principal, request_id)


@router.post(
    "/privacy/requests/{request_id}/extend", response_model=RequestOut, summary="Extend once"
)
async def extend(
    request_id: int, body: ExtendIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> RequestOut:
    """One extension of 1-30 days, before the due date, with a reason the customer is told."""
    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    await service.extend(
        db, req, actor=principal.actor, days=body.days, reason=body.reason, ip=principal.ip
    )
    return await _one(db, principal, request_id)


def _settings_out(row: PrivacySettings) -> SettingsOut:
    return SettingsOut(
        handle=row.handle,
        keywords=[KeywordIn(**k) for k in row.keywords],
        code_template=row.code_template,
        code_template_language=row.code_template_language,
    )


@router.get("/privacy/settings", response_model=SettingsOut, summary="Privacy settings")
async def get_settings(
    principal: Principal = Depends(manager), db: AsyncSession = DB
) -> SettingsOut:
    """The workspace's handle on the privacy center and its WhatsApp keywords."""
    assert principal.workspace_id is not None
    return _settings_out(await settings.ensure(db, principal.workspace_id))


@router.put("/privacy/settings", response_model=SettingsOut, summary="Change privacy settings")
async def put_settings(
    body: SettingsIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> SettingsOut:
    row = await settings.update(
        db,
        principal,
        handle=body.handle,
        keywords=[k.model_dump() for k in body.keywords] if body.keywords is not None else None,
        code_template=body.code_template,
        code_template_language=body.code_template_language,
    )
    return _settings_out(row)
