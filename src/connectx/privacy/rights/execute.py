"""One entry point for the requests subsystem: carry out ``right`` for ``subject``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.privacy.rights import (
    access,
    consent,
    erasure,
    portability,
    rectification,
    restriction,
)
from connectx.privacy.rights.base import Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.params import parse

Executor = Callable[[AsyncSession, Subject, Any, Context], Awaitable[Result]]


EXECUTORS: dict[Right, Executor] = {
    Right.ACCESS: access.run,
    Right.PORTABILITY: portability.run,
    Right.RECTIFICATION: rectification.run,
    Right.ERASURE: erasure.run,
    Right.RESTRICTION: restriction.run,
    Right.OBJECTION: consent.object_to,
    Right.WITHDRAWAL: consent.withdraw,
}


async def execute(
    db: AsyncSession,
    right: Right | str,
    subject: Subject,
    params: BaseModel | dict[str, Any] | None = None,
    *,
    actor: str = "system",
    request_id: int | None = None,
    ip: str | None = None,
) -> Result:
    """Carry out a verified (and, for end customers, approved) request in the caller's
    transaction. Raises a :class:`~connectx.kit.errors.DomainError` (422 bad parameters, 404 no
    such subject, 409 cannot be done as asked) and changes nothing then."""
    right = Right(right)
    typed = parse(right, params)
    return await EXECUTORS[right](db, subject, typed, Context(actor, request_id, ip))
