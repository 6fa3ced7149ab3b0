"""Carrying out an approved request: the executors of ``connectx.privacy.rights`` (one per
right, docs/privacy-rights.md), called in the approving transaction, and what the subject is
told about the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.errors import Conflict
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import fields
from connectx.privacy.rights import Subject, execute


@dataclass
class Outcome:
    code: str  # done, partial, recorded, refused, nothing
    result: dict[str, Any]
    artifact_id: int | None
    link: str | None

    def message(self, req: DataRequest) -> str:
        done = self.result.get("done") or []
        kept = self.result.get("kept") or []
        told = self.result.get("notices") or []
        lines = []
        if done:
            lines.append("What we did:")
            lines.extend(f"- {line}" for line in done)
        if kept:
            lines.append("")
            lines.append("What we kept, and why:")
            for item in kept:
                until = f" (until {item['until']})" if item.get("until") else ""
                lines.append(f"- {item.get('what')}: {item.get('why')}{until}")
        if told:
            lines.append("")
            lines.extend(told)
        if self.link:
            lines.append("")
            lines.append(
                f"Download your data here (the link works once and expires in 24 hours): "
                f"{self.link}"
            )
        if not lines:
            lines.append("Your request was carried out.")
        return "\n".join(lines)


def _subject(req: DataRequest) -> Subject:
    if req.subject is None:
        raise Conflict("This request is not linked to a person we hold data about.")
    kind, _, raw = req.subject.partition(":")
    if kind == "contact":
        assert req.workspace_id is not None
        return Subject.contact(req.workspace_id, int(raw))
    return Subject.user(int(raw))


async def _link(db: AsyncSession, artifact_id: int | None, actor: str) -> str | None:
    """A one-time link, valid 24 hours, to the export (access, portability)."""
    if artifact_id is None:
        return None
    from connectx.config import get_settings
    from connectx.privacy.rights.exports import issue_link

    token = await issue_link(db, artifact_id, actor=actor)
    return f"{get_settings().effective_public_url}/privacy/exports/download?token={token}"


async def run(db: AsyncSession, req: DataRequest, *, actor: str, ip: str | None) -> Outcome:
    params = await fields.read_json(db, req, "params")
    result = await execute(
        db, req.kind, _subject(req), params, actor=actor, request_id=req.id, ip=ip
    )
    data = result.to_dict()
    return Outcome(
        code=str(data.get("outcome", "done")),
        result=data,
        artifact_id=result.artifact_id,
        link=await _link(db, result.artifact_id, actor),
    )
