"""API shapes of the retention schedule."""

from __future__ import annotations

from pydantic import BaseModel, Field

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
