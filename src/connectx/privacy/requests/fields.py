"""A request's personal fields, sealed under the request's own key (``dsr:<id>``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.data_request import DataRequest
from connectx.privacy.vault import Vault

FIELDS = (
    "email",
    "phone",
    "name",
    "details",
    "params",
    "extension_reason",
    "refusal_reason",
    "result",
)


def key_of(req: DataRequest) -> str:
    return f"dsr:{req.id}"


async def write(db: AsyncSession, req: DataRequest, field: str, value: str | None) -> None:
    assert field in FIELDS
    blob = (
        None
        if value is None
        else await Vault(db).encrypt(req.workspace_id, key_of(req), f"data_requests.{field}", value)
    )
    setattr(req, f"{field}_enc", blob)


async def read(db: AsyncSession, req: DataRequest, field: str) -> str | None:
    assert field in FIELDS
    return await Vault(db).decrypt_or_none(
        req.workspace_id, key_of(req), f"data_requests.{field}", getattr(req, f"{field}_enc")
    )


async def write_json(db: AsyncSession, req: DataRequest, field: str, value: Any) -> None:
    await write(db, req, field, None if value is None else json.dumps(value, sort_keys=True))


async def read_json(db: AsyncSession, req: DataRequest, field: str) -> Any:
    raw = await read(db, req, field)
    return None if raw is None else json.loads(raw)
