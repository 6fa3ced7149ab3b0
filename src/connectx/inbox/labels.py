"""Labels: the workspace's tags, added to and removed from conversations."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.inbox import Label
from connectx.realtime import publish as realtime

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 60:
        raise InvalidInput("A label has 1 to 60 characters.", field="name")
    return name


def _color(raw: str | None) -> str:
    if raw is None:
        return "#888888"
    if not COLOR.match(raw):
        raise InvalidInput("color is a hex colour like #1e88e5.", field="color")
    return raw.lower()


async def _audit(db: AsyncSession, principal: Principal, action: str, **data: int | None) -> None:
    await audit.record(
        db,
        actor=principal.actor,
        action=action,
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data=dict(data),
    )


async def create(db: AsyncSession, principal: Principal, name: str, color: str | None) -> Label:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    name = _name(name)
    if await repo.label_by_name(db, ws, name) is not None:
        raise Conflict(f"There is already a label {name!r}.", field="name")
    label = Label(workspace_id=ws, name=name, color=_color(color), created_at=clock.now())
    try:
        async with db.begin_nested():
            await repo.add(db, label)
    except IntegrityError:
        raise Conflict(f"There is already a label {name!r}.", field="name") from None
    await _audit(db, principal, "inbox.label_created", label=label.id)
    return label


async def update(
    db: AsyncSession, principal: Principal, label_id: int, name: str | None, color: str | None
) -> Label:
    assert principal.workspace_id is not None
    label = await repo.label(db, principal.workspace_id, label_id)
    if name is not None:
        name = _name(name)
        other = await repo.label_by_name(db, principal.workspace_id, name)
        if other is not None and other.id != label.id:
            raise Conflict(f"There is already a label {name!r}.", field="name")
        label.name = name
    if color is not None:
        label.color = _color(color)
    await db.flush()
    await _audit(db, principal, "inbox.label_changed", label=label.id)
    return label


async def delete(db: AsyncSession, principal: Principal, label_id: int) -> None:
    assert principal.workspace_id is not None
    label = await repo.label(db, principal.workspace_id, label_id)
    await repo.remove(db, label)
    await _audit(db, principal, "inbox.label_deleted", label=label_id)


async def list_all(db: AsyncSession, workspace_id: int) -> list[Label]:
    return await repo.labels(db, workspace_id)


async def attach(
    db: AsyncSession, principal: Principal, conversation_id: int, label_id: int
) -> list[int]:
    """Add the label to the conversation (adding it twice changes nothing); its label ids."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await repo.conversation(db, ws, conversation_id)
    await repo.label(db, ws, label_id)
    if await repo.attach_label(
        db,
        {
            "workspace_id": ws,
            "conversation_id": conversation.id,
            "label_id": label_id,
            "created_at": clock.now(),
        },
    ):
        await _changed(db, principal, conversation.id, conversation.contact_id, label_id, True)
    return (await repo.labels_of(db, ws, [conversation.id]))[conversation.id]


async def detach(
    db: AsyncSession, principal: Principal, conversation_id: int, label_id: int
) -> list[int]:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await repo.conversation(db, ws, conversation_id)
    await repo.label(db, ws, label_id)
    if await repo.detach_label(db, ws, conversation.id, label_id):
        await _changed(db, principal, conversation.id, conversation.contact_id, label_id, False)
    return (await repo.labels_of(db, ws, [conversation.id]))[conversation.id]


async def _changed(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    contact_id: int,
    label_id: int,
    added: bool,
) -> None:
    assert principal.workspace_id is not None
    await audit.record(
        db,
        actor=principal.actor,
        action="conversation.label_added" if added else "conversation.label_removed",
        subject=f"contact:{contact_id}",
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"conversation": conversation_id, "label": label_id},
    )
    realtime.after_commit(
        db,
        principal.workspace_id,
        "conversation.updated",
        conversation_id=conversation_id,
        change="labels",
    )
