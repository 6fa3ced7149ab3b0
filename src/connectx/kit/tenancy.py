"""The one helper that scopes queries to the caller's workspace (house rule 2).

Repositories build queries with :func:`scoped` or fetch by id with :func:`get_in_workspace`;
an object of another workspace is indistinguishable from one that does not exist (404).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from connectx.kit.errors import NotFound


class Tenanted(Protocol):
    workspace_id: Any
    id: Any


T = TypeVar("T")


def scoped(model: type[T], workspace_id: int, *columns: Any) -> Select[Any]:
    """``SELECT`` from ``model`` (or the given columns) limited to one workspace."""
    column: InstrumentedAttribute[Any] = model.workspace_id  # type: ignore[attr-defined]
    stmt = select(*columns) if columns else select(model)
    return stmt.where(column == workspace_id)


async def get_in_workspace(
    db: AsyncSession, model: type[T], object_id: int, workspace_id: int, what: str | None = None
) -> T:
    """The object by primary key, if it belongs to the workspace. An object this transaction
    already loaded comes from the session's identity map without a query (a thread page asks
    for its conversation in four services); a SELECT would have returned that same object."""
    row = await db.get(model, object_id)
    if row is None or row.workspace_id != workspace_id:  # type: ignore[attr-defined]
        raise NotFound(f"No {what or model.__name__.lower()} {object_id} in this workspace.")
    return row


def scoped_update(model: type[T], workspace_id: int) -> Update:
    """``UPDATE`` of ``model`` rows limited to one workspace."""
    column: InstrumentedAttribute[Any] = model.workspace_id  # type: ignore[attr-defined]
    return update(model).where(column == workspace_id)
