"""API shapes of the retention schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectx.models.retention import LegalHold
from connectx.retention.schedule import ClassPeriod


class PeriodOut(BaseModel):
    retention_class: str = Field(description="The retention class (see the record of processing)")
    days: int | None = Field(description="The period in force; null: kept while its owner exists")
    description: str = Field(description="The period in words")
    why: str
    platform_days: int | None = Field(description="The operator's period for every workspace")
    workspace_days: int | None = Field(description="This workspace's own period, if it set one")
    workspace_may_set: bool
    min_days: int | None
    max_days: int | None

    @classmethod
    def of(cls, item: ClassPeriod) -> PeriodOut:
        return cls(
            retention_class=item.name,
            days=item.days,
            description=item.period.describe(),
            why=item.period.why,
            platform_days=item.platform_days,
            workspace_days=item.workspace_days,
            workspace_may_set=item.workspace_may_set,
            min_days=item.period.min_days,
            max_days=item.period.max_days,
        )


class PeriodIn(BaseModel):
    days: int | None = Field(
        description="Days after the class's event; null to go back to the operator's period"
    )


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int | None = Field(
        default=None, description="Hold one contact of this workspace; omit to hold the workspace"
    )
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why (a case or request reference); identifying details are masked",
    )


class HoldOut(BaseModel):
    id: int
    scope: Literal["workspace", "contact"]
    contact_id: int | None
    reason: str
    placed_by: str
    placed_at: datetime
    released_at: datetime | None
    released_by: str | None
    active: bool

    @classmethod
    def of(cls, hold: LegalHold) -> HoldOut:
        contact = hold.subject.partition(":")[2] if hold.subject else ""
        return cls(
            id=hold.id,
            scope="contact" if hold.subject else "workspace",
            contact_id=int(contact) if contact else None,
            reason=hold.reason,
            placed_by=hold.placed_by,
            placed_at=hold.placed_at,
            released_at=hold.released_at,
            released_by=hold.released_by,
            active=hold.released_at is None,
        )
