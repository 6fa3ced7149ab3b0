"""Seeding for the data-subject rights tests: workspaces and contacts made through the services
the platform itself uses (contact resolution seals and indexes like intake does)."""

from __future__ import annotations

from connectx.contacts.service import Contacts
from connectx.db.session import unit_of_work
from connectx.integrations.whatsapp.schemas import Identity, Profile
from connectx.kit import clock
from connectx.models.workspace import Workspace


async def make_workspace(name: str = "Acme Trading") -> int:
    async with unit_of_work() as db:
        now = clock.now()
        ws = Workspace(name=name, created_at=now, updated_at=now)
        db.add(ws)
        await db.flush()
        return int(ws.id)


async def make_contact(workspace_id: int, phone: str, name: str | None = None) -> int:
    async with unit_of_work() as db:
        contact = await Contacts(db).resolve(
            workspace_id, Identity(phone=phone), Profile(name=name)
        )
        assert contact is not None
        return int(contact.id)
