"""``/api/v1/contacts``: the people who wrote to the workspace (owners, admins, agents; API keys
with the ``read`` scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.contacts import service
from connectx.contacts.schemas import ContactOut, ContactPage
from connectx.db.session import db_session
from connectx.workspaces.access import allow

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])

readers = allow("read", "owner", "admin", "agent")


@router.get("", response_model=ContactPage, summary="Contacts, newest first; find one by phone")
async def list_contacts(
    phone: str | None = Query(None, description="Exact phone number, e.g. +971501234567."),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    limit: int = Query(50, description="1 to 200."),
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ContactPage:
    views, next_cursor = await service.list_contacts(
        db, principal, phone=phone, cursor=cursor, limit=limit
    )
    return ContactPage(
        items=[ContactOut.model_validate(v, from_attributes=True) for v in views],
        next_cursor=next_cursor,
    )


@router.get("/{contact_id}", response_model=ContactOut, summary="One contact")
async def get_contact(
    contact_id: int,
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ContactOut:
    view = await service.get_contact(db, principal, contact_id)
    return ContactOut.model_validate(view, from_attributes=True)
