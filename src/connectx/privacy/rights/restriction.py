"""Restriction of processing (GDPR art. 18): the data is kept but not processed until the
restriction is lifted. Sends (the outbound service asks :func:`ensure_can_process` at its one
call site), automation and exports skip the subject (they ask :func:`is_restricted` /
:func:`restricted_among`); agents see a banner (the contact API's ``restricted``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.kit.errors import Conflict
from connectx.models.account import User
from connectx.models.contact import Contact
from connectx.models.privacy_rights import ProcessingRestriction
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.params import RestrictionParams
from connectx.privacy.rights.subjects import ensure_exists, identity_of


def _ref(contact: Contact | int | str) -> str:
    if isinstance(contact, Contact):
        return f"contact:{contact.id}"
    if isinstance(contact, int):
        return f"contact:{contact}"
    return contact


async def is_restricted(db: AsyncSession, contact: Contact | int | str) -> bool:
    """Whether processing of this contact (or subject reference "user:12") is restricted."""
    return await repo.active_restriction(db, _ref(contact)) is not None


async def restricted_among(db: AsyncSession, contact_ids: Sequence[int]) -> set[int]:
    """The contacts of ``contact_ids`` whose processing is restricted (for lists, automation and
    bulk exports: one query)."""
    found = await repo.restricted_among(db, [f"contact:{i}" for i in contact_ids])
    return {int(ref.split(":", 1)[1]) for ref in found}


async def ensure_can_process(db: AsyncSession, contact: Contact) -> None:
    """Refuse (409) to process a restricted contact; the sender calls this before queueing."""
    if await is_restricted(db, contact):
        raise Conflict(
            "Processing of this contact's data is restricted at their request (GDPR art. 18): "
            "nothing can be sent to them until the restriction is lifted."
        )


async def run(
    db: AsyncSession, subject: Subject, params: RestrictionParams, ctx: Context
) -> Result:
    found = await ensure_exists(db, subject)
    current = await repo.active_restriction(db, subject.ref)
    result = Result(Right.RESTRICTION, subject.ref, Outcome.DONE)
    if params.lift:
        if current is None:
            result.outcome = Outcome.NOTHING
            result.done.append("Processing of your data was not restricted: nothing to lift.")
            return result
        current.lifted_at = clock.now()
        current.lifted_by = ctx.actor
        await db.flush()
        result.done.append("The restriction was lifted: your data is processed normally again.")
        await ctx.audit(db, Right.RESTRICTION, "restriction_lifted", subject, id=current.id)
        await _tell(db, subject, found, ctx, result, "lifted")
        return result
    if current is not None:
        result.outcome = Outcome.NOTHING
        result.done.append("Processing of your data was already restricted.")
        return result
    row = ProcessingRestriction(
        workspace_id=subject.workspace_id,
        subject=subject.ref,
        request_id=ctx.request_id,
        placed_by=ctx.actor,
        placed_at=clock.now(),
    )
    try:
        async with db.begin_nested():
            await repo.add(db, row)
    except IntegrityError:  # restricted concurrently by another request
        raise Conflict("Processing of this subject was restricted at the same moment.") from None
    cancelled = await repo.cancel_pending_sends(db, subject) if subject.kind == "contact" else 0
    result.done.append(
        "Processing of your data is restricted: it is kept, but nothing is sent to you, no "
        "automation acts on it and it is left out of exports, until the restriction is lifted."
    )
    if cancelled:
        result.done.append(f"{cancelled} message(s) waiting to be sent to you were cancelled.")
    result.counts["cancelled_sends"] = cancelled
    await ctx.audit(
        db, Right.RESTRICTION, "restriction_placed", subject, id=row.id, cancelled=cancelled
    )
    await _tell(db, subject, found, ctx, result, "placed")
    return result


async def _tell(
    db: AsyncSession,
    subject: Subject,
    found: Contact | User,
    ctx: Context,
    result: Result,
    what: str,
) -> None:
    """Recipients of the subject's data are told (GDPR art. 19)."""
    from connectx.privacy.rights import notices

    identifiers = await identity_of(db, found)
    await notices.notify(
        db,
        subject,
        Right.RESTRICTION,
        ctx,
        result,
        identifiers=identifiers,
        changes={"restriction": what},
    )
