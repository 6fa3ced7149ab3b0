"""JSON API of policy documents and acceptance."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.policies import service

router = APIRouter(prefix="/api/v1", tags=["policies"], dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")


class VersionOut(BaseModel):
    kind: str
    title: str
    last_updated: date
    material: bool
    summary: str | None
    published_at: datetime | None
    url: str

    @classmethod
    def of(cls, v: service.Version) -> VersionOut:
        return cls(
            kind=v.kind,
            title=v.title,
            last_updated=v.effective_on,
            material=v.material,
            summary=v.summary,
            published_at=v.published_at,
            url=v.url,
        )


@router.get("/policies", response_model=list[VersionOut], summary="Documents in force")
async def current() -> list[VersionOut]:
    """The privacy policy and the terms in force."""
    return [VersionOut.of(await service.current(kind)) for kind in service.KINDS]


@router.get("/policies/{kind}/versions", response_model=list[VersionOut], summary="Every version")
async def versions(kind: str) -> list[VersionOut]:
    """Every version of ``privacy`` or ``terms``, newest first."""
    return [VersionOut.of(v) for v in reversed(await service.versions(kind))]


@router.get("/account/policies", response_model=list[VersionOut], summary="Changes you must accept")
async def due(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[VersionOut]:
    assert principal.user_id is not None
    return [VersionOut.of(v) for v in await service.due_for(db, principal.user_id)]


@router.post(
    "/account/policies/accept", response_model=list[VersionOut], summary="Accept the changes"
)
async def accept(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[VersionOut]:
    """Record your acceptance of every version due (returns what was accepted)."""
    assert principal.user_id is not None
    return [VersionOut.of(v) for v in await service.accept(db, principal.user_id, ip=principal.ip)]
