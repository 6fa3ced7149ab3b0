"""Who runs an executor, for which request: written into every audit event it records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.privacy.rights.base import Right, Subject


@dataclass(frozen=True)
class Context:
    actor: str = "system"  # "user:3" (the admin or DPO who approved), "system"
    request_id: int | None = None  # the request being carried out, when there is one
    ip: str | None = None

    async def audit(
        self,
        db: AsyncSession,
        right: Right,
        action: str,
        subject: Subject,
        **data: Any,
    ) -> None:
        """``privacy.<action>`` about ``subject`` (ids and counts only)."""
        if self.request_id is not None:
            data["request_id"] = self.request_id
        data["right"] = str(right)
        await audit.record(
            db,
            actor=self.actor,
            action=f"privacy.{action}",
            subject=subject.ref,
            workspace_id=subject.workspace_id,
            ip=self.ip,
            data=data,
        )
