"""Withdrawal of consent and objection: both write to the consent ledger (the existing
service); an objection to anything but consent-based purposes is recorded for the controller's
decision."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.errors import InvalidInput
from connectx.kit.inventory import Purpose
from connectx.privacy import consent
from connectx.privacy.rights.base import Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.params import ObjectionParams, WithdrawalParams
from connectx.privacy.rights.subjects import ensure_exists

SOURCE = "privacy_request"


def _channels(channel: str | None) -> tuple[str, ...]:
    if channel is None:
        return consent.CHANNELS
    if channel not in consent.CHANNELS:
        raise InvalidInput(
            f"Unknown channel {channel!r}: use one of {', '.join(consent.CHANNELS)}.",
            field="channel",
        )
    return (channel,)


async def _notice_version(db: AsyncSession) -> str:
    from connectx.policies import service as policies

    return (await policies.current("privacy", db)).key


async def _withdraw(
    db: AsyncSession,
    subject: Subject,
    purpose: str,
    channels: tuple[str, ...],
    ctx: Context,
    *,
    only_granted: bool,
    wording: str,
) -> list[str]:
    """Append a withdrawal for each channel (only where consent is in force when
    ``only_granted``); the channels written."""
    written = []
    version = await _notice_version(db)
    for channel in channels:
        if only_granted and not await consent.is_granted(db, subject.ref, purpose, channel):
            continue
        await consent.record(
            db,
            subject=subject.ref,
            workspace_id=subject.workspace_id,
            purpose=purpose,
            channel=channel,
            granted=False,
            source=SOURCE,
            wording=wording,
            notice_version=version,
            actor=ctx.actor,
            ip=ctx.ip,
        )
        written.append(channel)
    return written


def _request_words(ctx: Context) -> str:
    return f"request {ctx.request_id}" if ctx.request_id is not None else "a privacy request"


async def withdraw(
    db: AsyncSession, subject: Subject, params: WithdrawalParams, ctx: Context
) -> Result:
    """Withdrawal of consent (art. 7(3)): a withdrawal in the ledger for each channel where
    consent for ``purpose`` is in force."""
    if params.purpose not in consent.PURPOSES:
        raise InvalidInput(
            f"Unknown consent purpose {params.purpose!r}: use one of "
            f"{', '.join(consent.PURPOSES)}.",
            field="purpose",
        )
    await ensure_exists(db, subject)
    channels = _channels(params.channel)
    written = await _withdraw(
        db,
        subject,
        params.purpose,
        channels,
        ctx,
        only_granted=True,
        wording=f"Consent withdrawn by the person through {_request_words(ctx)}.",
    )
    result = Result(Right.WITHDRAWAL, subject.ref, Outcome.DONE if written else Outcome.NOTHING)
    if written:
        result.done.append(
            f"Your consent to {params.purpose.replace('_', ' ')} was withdrawn on "
            f"{', '.join(written)}; it took effect at once."
        )
    else:
        result.done.append(
            f"No consent to {params.purpose.replace('_', ' ')} was in force on "
            f"{', '.join(channels)}: there was nothing to withdraw."
        )
    result.counts["ledger_records"] = len(written)
    await ctx.audit(db, Right.WITHDRAWAL, "right_executed", subject, records=len(written))
    return result


async def object_to(
    db: AsyncSession, subject: Subject, params: ObjectionParams, ctx: Context
) -> Result:
    """Objection (art. 21). Direct marketing: absolute and immediate, a withdrawal on every
    channel (or the one named) whatever the current state. Other consent-based purposes: the
    same. Purposes resting on legitimate interests or a contract: recorded for the controller,
    who must show compelling grounds to go on."""
    purpose = params.purpose
    processing = {str(p) for p in Purpose}
    if purpose not in consent.PURPOSES and purpose not in processing:
        allowed = sorted(set(consent.PURPOSES) | processing)
        raise InvalidInput(
            f"Unknown purpose {purpose!r}: use one of {', '.join(allowed)}.", field="purpose"
        )
    await ensure_exists(db, subject)
    if purpose in consent.PURPOSES:
        channels = _channels(params.channel)
        written = await _withdraw(
            db,
            subject,
            purpose,
            channels,
            ctx,
            only_granted=False,
            wording=f"The person objected to {purpose.replace('_', ' ')} through "
            f"{_request_words(ctx)}; no further processing for it.",
        )
        result = Result(Right.OBJECTION, subject.ref, Outcome.DONE)
        result.done.append(
            f"Your objection to {purpose.replace('_', ' ')} took effect at once on "
            f"{', '.join(channels)}: nothing more is sent or processed for it."
        )
        result.counts["ledger_records"] = len(written)
        await ctx.audit(
            db, Right.OBJECTION, "right_executed", subject, purpose=purpose, records=len(written)
        )
        return result
    result = Result(Right.OBJECTION, subject.ref, Outcome.RECORDED)
    result.done.append(
        f"Your objection to processing for {purpose} was recorded for the controller's decision."
    )
    result.notices.append(
        "Processing for this purpose stops unless the controller shows compelling legitimate "
        "grounds that override your interests, or needs it for legal claims (GDPR art. 21(1)). "
        "While it decides you may ask for processing to be restricted."
    )
    await ctx.audit(db, Right.OBJECTION, "objection_recorded", subject, purpose=purpose)
    return result
