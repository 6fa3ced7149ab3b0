"""Access (GDPR art. 15): a zip with every record about the subject as JSON and CSV, the files
they sent (decrypted), and a readable summary (purposes, lawful bases, recipients, retention
periods, sources, consent history). Nothing of another subject or workspace."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.kit.crypto import CryptoError
from connectx.media import store
from connectx.media.service import EXTENSIONS, _first_then_rest
from connectx.privacy.processors import REGISTRY
from connectx.privacy.retention_schedule import period_of
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Kept, Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.exports import ArchiveWriter
from connectx.privacy.rights.extract import WHY_WITHHELD, Extract, Table, extract
from connectx.privacy.rights.params import AccessParams
from connectx.privacy.rights.records import SOURCES
from connectx.privacy.rights.subjects import ensure_exists
from connectx.privacy.vault import Vault

FORMAT = "connectx.access/1"


def _csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.columns, extrasaction="ignore")
    writer.writeheader()
    for row in table.rows:
        writer.writerow(
            {
                k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )
    return buf.getvalue()


def _summary_rows(data: Extract) -> list[dict[str, Any]]:
    """Per table: how many records, where they come from, and per personal category why and how
    long it is kept and who receives it."""
    out = []
    for table in data.tables:
        categories: dict[str, dict[str, Any]] = {}
        for column, decl in table.declarations.items():
            if not decl.personal or column.removesuffix("_enc") not in table.columns:
                continue
            entry = categories.setdefault(
                decl.category,
                {"purposes": set(), "bases": set(), "retention": set(), "recipients": set()},
            )
            entry["purposes"].add(str(decl.purpose))
            entry["bases"].add(str(decl.basis).replace("_", " "))
            entry["retention"].add(period_of(decl.retention).describe())
            for r in REGISTRY:
                if data.subject.kind in r.subjects and r.receives(decl.category):
                    entry["recipients"].add(r.name)
        out.append(
            {
                "table": table.name,
                "count": len(table.rows),
                "about": table.about,
                "source": SOURCES.get(table.name, "ConnectX"),
                "categories": {
                    k: {kk: sorted(vv) for kk, vv in v.items()}
                    for k, v in sorted(categories.items())
                },
            }
        )
    return out


def _summary_html(data: Extract, files: list[str], generated: str) -> str:
    from connectx.web.templating import env

    consent = data.table("consent_records")
    return env.get_template("privacy/access_summary.html").render(
        subject=data.subject,
        generated=generated,
        tables=_summary_rows(data),
        consents=consent.rows if consent else [],
        files=files,
        withheld=sorted(data.withheld),
        recipients=[r for r in REGISTRY if data.subject.kind in r.subjects],
    )


async def add_files(db: AsyncSession, archive: ArchiveWriter, subject: Subject) -> list[str]:
    names: list[str] = []
    if subject.kind != "contact":
        return names
    vault = Vault(db)
    for media in await repo.stored_media(db, subject):
        assert media.storage_key is not None
        ext = EXTENSIONS.get(media.mime_type or "", "bin")
        name = f"files/message-{media.message_id}.{ext}"
        chunks = store.open_chunks(vault, subject.workspace_id, subject.id, media.storage_key)
        try:
            first = await anext(chunks)
        except (FileNotFoundError, CryptoError, StopAsyncIteration):
            continue  # erased or gone: nothing readable to hand out
        await archive.add_stream(name, _first_then_rest(first, chunks))
        names.append(name)
    return names


async def run(db: AsyncSession, subject: Subject, params: AccessParams, ctx: Context) -> Result:
    del params
    await ensure_exists(db, subject)
    data = await extract(db, subject)
    generated = clock.now().isoformat()
    archive = ArchiveWriter(db, subject)
    try:
        files = await add_files(db, archive, subject)
        document = {
            "format": FORMAT,
            "generated_at": generated,
            "subject": subject.ref,
            "workspace_id": subject.workspace_id,
            "tables": {t.name: t.rows for t in data.tables},
            "files": files,
        }
        await archive.add("data.json", json.dumps(document, indent=2, ensure_ascii=False))
        for table in data.tables:
            await archive.add(f"csv/{table.name}.csv", _csv(table))
        await archive.add("index.html", _summary_html(data, files, generated))
        export = await archive.finish(str(Right.ACCESS), ctx)
    except BaseException:
        archive.abort()
        raise
    result = Result(Right.ACCESS, subject.ref, Outcome.DONE, artifact_id=export.id)
    result.counts = {t.name: len(t.rows) for t in data.tables}
    result.counts["files"] = len(files)
    result.done.append(
        f"A copy of {sum(len(t.rows) for t in data.tables)} records in {len(data.tables)} "
        f"tables and {len(files)} files you sent was prepared (JSON, CSV and a readable summary)."
    )
    for what in sorted(data.withheld):
        why, basis = WHY_WITHHELD[what]
        result.kept.append(Kept(what, why, basis))
    await ctx.audit(
        db, Right.ACCESS, "right_executed", subject, export_id=export.id, files=len(files)
    )
    return result
