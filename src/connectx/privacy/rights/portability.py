"""Portability (GDPR art. 20): the data the subject provided (their profile, the messages and
files they sent, their consent decisions) as JSON a machine can import, in a zip with its JSON
Schema. Format ``connectx.portability/1`` (docs/privacy-rights.md)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.privacy.rights.access import add_files
from connectx.privacy.rights.base import Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.exports import ArchiveWriter
from connectx.privacy.rights.extract import Extract, extract
from connectx.privacy.rights.params import PortabilityParams
from connectx.privacy.rights.subjects import ensure_exists

FORMAT = "connectx.portability/1"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://connectx.dev/schemas/portability-1.json",
    "title": "Data a person provided to ConnectX (GDPR art. 20)",
    "type": "object",
    "required": ["format", "generated_at", "subject", "profile", "messages", "consents"],
    "properties": {
        "format": {"const": FORMAT},
        "generated_at": {"type": "string", "format": "date-time"},
        "subject": {
            "type": "object",
            "required": ["kind", "reference"],
            "properties": {
                "kind": {"enum": ["contact", "user"]},
                "reference": {"type": "string"},
                "workspace_id": {"type": ["integer", "null"]},
            },
        },
        "profile": {
            "type": "object",
            "description": "Contact: name, phone (E.164), whatsapp_user_id, username. Account: "
            "name, email, phone, billing_address. Absent values are null.",
            "additionalProperties": {"type": ["string", "null"]},
        },
        "messages": {
            "type": "array",
            "description": "Messages the person sent, oldest first.",
            "items": {
                "type": "object",
                "required": ["id", "sent_at", "type"],
                "properties": {
                    "id": {"type": "integer"},
                    "sent_at": {"type": "string", "format": "date-time"},
                    "type": {"type": "string"},
                    "text": {"type": ["string", "null"]},
                    "content": {"type": ["object", "null"]},
                    "conversation_id": {"type": "integer"},
                    "file": {"type": ["string", "null"], "description": "Path in the zip."},
                },
            },
        },
        "consents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["purpose", "channel", "granted", "at"],
                "properties": {
                    "purpose": {"type": "string"},
                    "channel": {"type": "string"},
                    "granted": {"type": "boolean"},
                    "at": {"type": "string", "format": "date-time"},
                    "source": {"type": "string"},
                    "wording": {"type": "string"},
                },
            },
        },
    },
}


def _rows(data: Extract, table: str) -> list[dict[str, Any]]:
    found = data.table(table)
    return found.rows if found else []


def _profile(data: Extract) -> dict[str, Any]:
    if data.subject.kind == "contact":
        [row] = _rows(data, "contacts") or [{}]
        extra = row.get("profile") if isinstance(row.get("profile"), dict) else {}
        return {
            "name": row.get("name"),
            "phone": row.get("phone"),
            "whatsapp_user_id": row.get("bsuid"),
            "username": (extra or {}).get("username"),
        }
    [row] = _rows(data, "users") or [{}]
    return {k: row.get(k) for k in ("name", "email", "phone", "billing_address")}


def _messages(data: Extract, files: dict[int, str]) -> list[dict[str, Any]]:
    out = []
    for m in _rows(data, "messages"):
        if m.get("direction") != "in":
            continue
        content = m.get("content")
        out.append(
            {
                "id": m["id"],
                "sent_at": m["sent_at"],
                "type": m["type"],
                "text": m.get("body"),
                "content": content if isinstance(content, dict) else None,
                "conversation_id": m["conversation_id"],
                "file": files.get(int(m["id"])),
            }
        )
    return out


def _consents(data: Extract) -> list[dict[str, Any]]:
    return [
        {
            "purpose": r["purpose"],
            "channel": r["channel"],
            "granted": bool(r["granted"]),
            "at": r["created_at"],
            "source": r["source"],
            "wording": r["wording"],
        }
        for r in _rows(data, "consent_records")
    ]


async def run(
    db: AsyncSession, subject: Subject, params: PortabilityParams, ctx: Context
) -> Result:
    del params
    await ensure_exists(db, subject)
    data = await extract(db, subject)
    archive = ArchiveWriter(db, subject)
    try:
        names = await add_files(db, archive, subject)
        files = {int(n.split("-", 1)[1].split(".", 1)[0]): n for n in names}
        document = {
            "format": FORMAT,
            "generated_at": clock.now().isoformat(),
            "subject": {
                "kind": subject.kind,
                "reference": subject.ref,
                "workspace_id": subject.workspace_id,
            },
            "profile": _profile(data),
            "messages": _messages(data, files),
            "consents": _consents(data),
        }
        await archive.add("portability.json", json.dumps(document, indent=2, ensure_ascii=False))
        await archive.add("schema.json", json.dumps(SCHEMA, indent=2))
        export = await archive.finish(str(Right.PORTABILITY), ctx)
    except BaseException:
        archive.abort()
        raise
    result = Result(Right.PORTABILITY, subject.ref, Outcome.DONE, artifact_id=export.id)
    result.counts = {
        "messages": len(document["messages"]),
        "consents": len(document["consents"]),
        "files": len(names),
    }
    result.done.append(
        "The data you gave us (your profile, the messages and files you sent, your consent "
        f"decisions) was prepared as JSON ({FORMAT}, with its JSON Schema) to take elsewhere."
    )
    await ctx.audit(db, Right.PORTABILITY, "right_executed", subject, export_id=export.id)
    return result
