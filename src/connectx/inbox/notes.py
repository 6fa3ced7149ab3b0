"""Internal notes: what members write about a conversation for each other. Never sent to Meta.

A note is personal data about the customer: PAN-masked like messages, sealed under the contact's
subject key (erasing the contact erases its notes) and readable only by the workspace's owners,
admins and agents (API keys with ``read``/``write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.models.inbox import Note
from connectx.privacy.pan import mask_pans
from connectx.privacy.vault import Vault
from connectx.realtime import publish as realtime

COLUMN = "notes.body"
MAX_CHARS = 4000


@dataclass
class NoteView:
    id: int
    conversation_id: int
    author_user_id: int | None
    body: str | None  # None: the contact was erased
    created_at: datetime


async def add(db: AsyncSession, principal: Principal, conversation_id: int, body: str) -> NoteView:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    text = body.strip()
    if not text:
        raise InvalidInput("A note needs some text.", field="body")
    if len(text) > MAX_CHARS:
        raise InvalidInput(f"A note has at most {MAX_CHARS} characters.", field="body")
    text = mask_pans(text)
    conversation = await repo.conversation(db, ws, conversation_id)
    subject = f"contact:{conversation.contact_id}"
    note = Note(
        workspace_id=ws,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        author_user_id=principal.user_id,
        body_enc=await Vault(db).encrypt(ws, subject, COLUMN, text),
        created_at=clock.now(),
    )
    await repo.add(db, note)
    await audit.record(
        db,
        actor=principal.actor,
        action="conversation.note_added",
        subject=subject,
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": conversation.id, "note": note.id},
    )
    realtime.after_commit(db, ws, "note.new", conversation_id=conversation.id, note_id=note.id)
    return NoteView(note.id, note.conversation_id, note.author_user_id, text, note.created_at)


async def list_for(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[NoteView]:
    """The conversation's notes, oldest first; with ``start``/``end`` only those written in
    [start, end) (a thread page's stretch of time), chosen in SQL before anything is opened."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await repo.conversation(db, ws, conversation_id)
    vault = Vault(db)
    subject = f"contact:{conversation.contact_id}"
    out = []
    for note in await repo.notes(db, ws, conversation.id, start=start, end=end):
        body = await vault.decrypt_or_none(ws, f"contact:{note.contact_id}", COLUMN, note.body_enc)
        out.append(
            NoteView(note.id, note.conversation_id, note.author_user_id, body, note.created_at)
        )
    await audit.record_view(
        db,
        actor=principal.actor,
        action="conversation.notes_viewed",
        subject=subject,
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": conversation.id, "notes": len(out)},
    )
    return out
