"""Finding the subject a request is about (404 when it does not exist in that workspace)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.account import User
from connectx.models.contact import Contact
from connectx.privacy.rights.base import Subject


async def ensure_exists(db: AsyncSession, subject: Subject) -> Contact | User:
    if subject.kind == "contact":
        from connectx.contacts import repository as contacts

        assert subject.workspace_id is not None
        return await contacts.get(db, subject.workspace_id, subject.id)
    from connectx.accounts.service import get_user

    return await get_user(db, subject.id)
