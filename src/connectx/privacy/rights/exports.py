"""Archives handed to a subject (access, portability): a zip built as it is written and sealed in
chunks under the subject's own key (``connectx.media.store``'s format) in ``<data dir>/exports``,
so no plaintext reaches the disk and erasing the subject also erases their archives.

A download link is a random token (only its SHA-256 is stored) that works once and for 24 hours
(never past the archive's own 7-day life). Downloading, refusals and link issuing are audited.
"""

from __future__ import annotations

import hashlib
import secrets
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.kit import clock
from connectx.kit.errors import Gone, NotFound
from connectx.media import store
from connectx.models.privacy_rights import PrivacyExport
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.vault import Vault

LINK_LIFE = timedelta(hours=24)
EXPORT_LIFE = timedelta(days=7)


def exports_dir() -> Path:
    return get_settings().data_dir / "exports"


def _subject_of(export: PrivacyExport) -> Subject:
    kind, _, number = export.subject.partition(":")
    if kind == "contact":
        assert export.workspace_id is not None
        return Subject.contact(export.workspace_id, int(number))
    return Subject.user(int(number))


class _Sink:
    """What ``zipfile`` writes to (not seekable: it uses data descriptors). Bytes wait here until
    :meth:`drain` seals them."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.pending += data
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        return None


class ArchiveWriter:
    """Add entries to a zip sealed as it grows; :meth:`finish` records the export row."""

    def __init__(self, db: AsyncSession, subject: Subject) -> None:
        self.db = db
        self.subject = subject
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]
        self._sealed = store.SealedWriter(
            Vault(db), subject.workspace_id, None, subject=subject.ref, base=exports_dir()
        )
        self.entries = 0

    async def _drain(self) -> None:
        if self._sink.pending:
            data = bytes(self._sink.pending)
            self._sink.pending.clear()
            await self._sealed.write(data)

    async def add(self, name: str, data: bytes | str) -> None:
        self._zip.writestr(name, data.encode() if isinstance(data, str) else data)
        self.entries += 1
        await self._drain()

    async def add_stream(self, name: str, chunks: AsyncIterator[bytes]) -> None:
        with self._zip.open(name, "w") as entry:
            async for chunk in chunks:
                entry.write(chunk)
                await self._drain()
        self.entries += 1
        await self._drain()

    def abort(self) -> None:
        self._sealed.abort()

    async def finish(self, kind: str, ctx: Context) -> PrivacyExport:
        self._zip.close()
        await self._drain()
        key = await self._sealed.finish()
        now = clock.now()
        export = PrivacyExport(
            workspace_id=self.subject.workspace_id,
            subject=self.subject.ref,
            kind=kind,
            request_id=ctx.request_id,
            storage_key=key,
            size=self._sink.size,
            files=self.entries,
            created_by=ctx.actor,
            created_at=now,
            expires_at=now + EXPORT_LIFE,
        )
        await repo.add(self.db, export)
        await ctx.audit(
            self.db,
            Right(kind),
            "export_created",
            self.subject,
            export_id=export.id,
            entries=self.entries,
            size=self._sink.size,
        )
        return export


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue_link(db: AsyncSession, export_id: int, *, actor: str = "system") -> str:
    """A new download token for an export (any earlier one stops working): valid once, for 24
    hours, never past the export's expiry. The caller builds the URL
    (``/privacy/exports/download?token=…``) and sends it to the subject."""
    export = await repo.export_by_id(db, export_id)
    if export is None:
        raise NotFound(f"No export {export_id}.")
    now = clock.now()
    if export.downloaded_at is not None or export.storage_key is None or export.expires_at <= now:
        raise Gone(f"Export {export_id} was downloaded already or has expired; make a new one.")
    token = secrets.token_urlsafe(32)
    export.link_hash = _hash(token)
    export.link_expires_at = min(now + LINK_LIFE, export.expires_at)
    await db.flush()
    await audit.record(
        db,
        actor=actor,
        action="privacy.export_link_issued",
        subject=export.subject,
        workspace_id=export.workspace_id,
        data={"export_id": export.id},
    )
    return token


@dataclass
class Download:
    export_id: int
    kind: str
    size: int
    filename: str
    chunks: AsyncIterator[bytes]


async def _refuse(db: AsyncSession, export: PrivacyExport | None, why: str, ip: str | None) -> Gone:
    await audit.record(
        db,
        actor="anonymous",
        action="privacy.export_refused",
        subject=export.subject if export else None,
        workspace_id=export.workspace_id if export else None,
        ip=ip,
        data={"export_id": export.id if export else None, "why": why},
    )
    return Gone(
        "This download link has been used or has expired. Links work once and for 24 hours: "
        "ask the business (or ConnectX) for a new copy."
    )


async def peek(db: AsyncSession, token: str) -> PrivacyExport | None:
    """The export a token leads to while it is still usable (for the download page; changes
    nothing)."""
    export = await repo.export_by_link(db, _hash(token)) if token else None
    if export is None or export.downloaded_at is not None or export.storage_key is None:
        return None
    if export.link_expires_at is None or export.link_expires_at <= clock.now():
        return None
    return export


async def download(db: AsyncSession, token: str, *, ip: str | None = None) -> Download:
    """Use a link: the export is marked downloaded in this transaction (a second use, even
    concurrent, gets 410). The caller commits before streaming ``chunks``, which decrypt the
    sealed file as they go and delete it at the end (a rolled-back use leaves it in place)."""
    link = _hash(token) if token else b""
    export = await repo.export_by_link(db, link) if token else None
    now = clock.now()
    if export is None:
        raise await _refuse(db, None, "unknown", ip)
    if export.downloaded_at is not None or export.storage_key is None:
        raise await _refuse(db, export, "used", ip)
    if export.link_expires_at is None or export.link_expires_at <= now:
        raise await _refuse(db, export, "expired", ip)
    if not await repo.consume_export(db, export.id, link, now):
        raise await _refuse(db, export, "used", ip)
    subject = _subject_of(export)
    key = export.storage_key
    base = exports_dir()
    export.storage_key = None
    export.deleted_at = now
    await audit.record(
        db,
        actor="anonymous",
        action="privacy.export_downloaded",
        subject=export.subject,
        workspace_id=export.workspace_id,
        ip=ip,
        data={"export_id": export.id, "size": export.size},
    )

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in store.open_chunks(
                Vault(None), subject.workspace_id, None, key, subject=subject.ref, base=base
            ):
                yield chunk
        finally:
            store.delete(key, base)

    name = f"connectx-{export.kind}-{export.created_at:%Y%m%d}-{export.id}.zip"
    return Download(export.id, export.kind, export.size, name, stream())


async def delete_files(keys: list[str]) -> None:
    base = exports_dir()
    for key in keys:
        store.delete(key, base)
