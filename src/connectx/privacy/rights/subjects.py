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


async def identity_of(db: AsyncSession, found: Contact | User) -> dict[str, str]:
    """What identifies the subject, by data category (for recipients' notices): read before
    anything is changed or erased."""
    if isinstance(found, Contact):
        from connectx.contacts.service import Contacts

        view = await Contacts(db).view(found)
        values = {
            "user.contact.phone": view.phone,
            "user.unique_id": view.bsuid,
            "user.name": view.name,
        }
    else:
        from connectx.accounts import service as accounts

        profile = await accounts.profile(db, found)
        values = {
            "user.contact.email": profile.email,
            "user.name": profile.name,
            "user.contact.phone": profile.phone,
        }
    return {k: v for k, v in values.items() if v}
