"""The parameters each right takes, as the requests subsystem stores them (JSON) and passes them
to :func:`connectx.privacy.rights.execute`. Unknown keys are refused, so a typo is a 422 naming
the field rather than a silently ignored wish."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectx.privacy.rights.base import Right, invalid_params


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessParams(_Params):
    """A copy of every record about the subject (no options)."""


class PortabilityParams(_Params):
    """The data the subject provided, as JSON a machine can import (no options)."""


class RectificationParams(_Params):
    """The corrected values. Contacts: ``name``, ``phone`` and ``attributes`` (name -> value;
    ``None`` removes one). Account holders: ``name``, ``email``, ``phone``."""

    name: str | None = Field(None, min_length=1, max_length=200)
    phone: str | None = Field(None, min_length=4, max_length=32)
    email: str | None = Field(None, min_length=3, max_length=320)
    attributes: dict[str, str | None] | None = None


class ErasureParams(_Params):
    """Erase everything the law lets us erase (no options)."""


class RestrictionParams(_Params):
    """Restrict processing (``lift=False``) or lift a restriction (``lift=True``)."""

    lift: bool = False


class ObjectionParams(_Params):
    """An objection to processing for ``purpose``: ``marketing`` is absolute and immediate
    (every channel, or ``channel``); any other purpose is recorded for the controller's
    decision, with the subject's ``grounds``."""

    purpose: str = Field("marketing", min_length=1, max_length=32)
    channel: str | None = Field(None, max_length=16)
    grounds: str | None = Field(None, max_length=2000)


class WithdrawalParams(_Params):
    """Withdraw consent for ``purpose`` on ``channel`` (every channel when ``None``)."""

    purpose: str = Field(min_length=1, max_length=32)
    channel: str | None = Field(None, max_length=16)


MODELS: dict[Right, type[_Params]] = {
    Right.ACCESS: AccessParams,
    Right.PORTABILITY: PortabilityParams,
    Right.RECTIFICATION: RectificationParams,
    Right.ERASURE: ErasureParams,
    Right.RESTRICTION: RestrictionParams,
    Right.OBJECTION: ObjectionParams,
    Right.WITHDRAWAL: WithdrawalParams,
}


def parse(right: Right, raw: BaseModel | dict[str, Any] | None) -> Any:
    """The typed parameters of ``right`` from a stored mapping (422 naming the bad field)."""
    model = MODELS[right]
    if isinstance(raw, model):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise invalid_params(right, [dict(e) for e in exc.errors()]) from None
