"""Inbound media: queue the download when a message is stored, download and check it, seal it
into the media store, and open it for the workspace's people.

The download (task ``media.download``): media id → ``GET /{version}/{media-id}`` with the
channel's Bearer token → the short-lived url → the bytes, streamed with the same token and sealed
chunk by chunk as they arrive. A 404 on the url (expired, 5 minutes at Meta) asks for a fresh url.
Connection trouble and 5xx/429/401 answers raise, so the job retries with its backoff; on the
job's last attempt the media is marked ``failed`` instead. Size, type and checksum violations
mark it ``rejected`` with a reason a person can read; nothing here crashes the worker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.db.session import unit_of_work
from connectx.jobs import runner
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.kit.errors import Gone, NotFound
from connectx.kit.numbers import is_digits
from connectx.media import repository as repo
from connectx.media import sniff, store
from connectx.models.media import FAILED, PENDING, REJECTED, STORED
from connectx.outbound import graph
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

TASK = "media.download"
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "document": 100 * MB}
STICKER_LIMIT = 100 * 1024
ANIMATED_STICKER_LIMIT = 500 * 1024
URL_ATTEMPTS = 3  # fresh urls asked for within one attempt of the job
READ_TIMEOUT_S = 30.0


def size_limit(kind: str, animated: bool = False) -> int:
    if kind == "sticker":
        return ANIMATED_STICKER_LIMIT if animated else STICKER_LIMIT
    return LIMITS.get(kind, LIMITS["document"])


# -- queueing (called where inbound messages are stored) --------------------------------------
async def schedule(db: AsyncSession, stored: list[tuple[int, int, int]]) -> None:
    """For each stored (workspace, contact, message id) carrying media: a ``pending`` media row
    and a ``media.download`` job, in the caller's transaction."""
    if not stored:
        return
    now = clock.now()
    await repo.add_many(
        db,
        [
            {
                "workspace_id": ws,
                "contact_id": contact_id,
                "message_id": message_id,
                "state": PENDING,
                "created_at": now,
                "updated_at": now,
            }
            for ws, contact_id, message_id in stored
        ],
    )
    for _, _, message_id in stored:
        await enqueue(db, TASK, {"message_id": message_id})


# -- the download ------------------------------------------------------------------------------
class Transient(Exception):
    """Worth trying again later (connection trouble, Meta busy, token refused)."""


class Rejected(Exception):
    """The file breaks a rule (size, type, checksum); ``str()`` is the reason, no content."""


class Unavailable(Exception):
    """Meta no longer has the media (or never had it): nothing to retry."""


@dataclass
class Job:
    media_id: int
    workspace_id: int
    contact_id: int
    message_id: int
    kind: str
    animated: bool
    graph_media_id: str
    declared_mime: str | None
    declared_sha256: str | None
    token: str


@dataclass
class Downloaded:
    storage_key: str
    size: int
    sha256: str
    mime_type: str


def _digest(value: str | None) -> bytes | None:
    """Meta gives SHA-256 as hex (media lookup) or base64 (some webhooks)."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None
        )
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


async def prepare(message_id: int) -> Job | None:
    """Read what the download needs in a short transaction of its own (the download must not
    hold the database). ``None`` when there is nothing (left) to do."""
    from connectx.channels import repository as channels_repo
    from connectx.channels import service as channels
    from connectx.messages import repository as messages
    from connectx.messages.service import CONTENT
    from connectx.messages.service import subject_of as contact_subject

    async with unit_of_work() as db:
        media = await repo.by_message(db, message_id)
        if media is None or media.state != PENDING:
            return None
        message = await messages.by_id(db, message_id)
        if message is None or not message.media_id:
            return None
        channel = await channels_repo.get(db, message.workspace_id, message.channel_id)
        token = await channels.access_token(db, channel)
        details: dict[str, Any] = {}
        opened = await Vault(db).decrypt_or_none(
            message.workspace_id, contact_subject(message.contact_id), CONTENT, message.content_enc
        )
        if opened:
            try:
                details = dict(json.loads(opened))
            except (ValueError, TypeError):
                details = {}
        return Job(
            media_id=media.id,
            workspace_id=media.workspace_id,
            contact_id=media.contact_id,
            message_id=message_id,
            kind=message.type,
            animated=bool(details.get("animated")),
            graph_media_id=message.media_id,
            declared_mime=message.media_mime_type,
            declared_sha256=message.media_sha256,
            token=token or "",
        )


async def lookup(job: Job) -> dict[str, Any]:
    try:
        return await graph.call("GET", job.graph_media_id, job.token)
    except graph.GraphError as exc:
        if exc.code == 100 or exc.http_status in (400, 404):
            raise Unavailable("Meta no longer has this media") from None
        raise Transient(f"media lookup: Graph error {exc.code} ({exc.http_status})") from None


def check_lookup(job: Job, info: dict[str, Any]) -> tuple[str, str, int | None, bytes]:
    url = info.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise Transient("the media lookup gave no url")
    mime = sniff.base_type(str(info.get("mime_type") or ""))
    if not mime:
        raise Rejected("the media lookup gave no MIME type")
    declared = sniff.base_type(job.declared_mime)
    if declared and declared != mime:
        raise Rejected(f"the message says {declared} but Meta's media lookup says {mime}")
    limit = size_limit(job.kind, job.animated)
    size = info.get("file_size")
    file_size = int(size) if isinstance(size, int | str) and is_digits(str(size)) else None
    if file_size is not None and file_size > limit:
        raise Rejected(f"{job.kind} of {file_size} bytes is over the {limit}-byte limit")
    expected = _digest(str(info.get("sha256") or "")) or _digest(job.declared_sha256)
    if expected is None:
        raise Rejected("no SHA-256 was given to check the file against")
    declared_digest = _digest(job.declared_sha256)
    if declared_digest is not None and declared_digest != expected:
        raise Rejected("the message's SHA-256 and Meta's media lookup disagree")
    return url, mime, file_size, expected


async def fetch(job: Job, url: str, mime: str, expected: bytes) -> Downloaded | None:
    """Stream ``url`` into the store. ``None`` when the url is no longer valid (404)."""
    limit = size_limit(job.kind, job.animated)
    headers = {"Authorization": f"Bearer {job.token}"}
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=READ_TIMEOUT_S)
    writer = store.SealedWriter(Vault(), job.workspace_id, job.contact_id)
    try:
        async with graph.session().get(url, headers=headers, timeout=timeout) as response:
            if response.status == 404:
                writer.abort()
                return None
            if response.status != 200:
                raise Transient(f"media download: HTTP {response.status}")
            declared_length = response.content_length
            if declared_length is not None and declared_length > limit:
                raise Rejected(
                    f"{job.kind} of {declared_length} bytes is over the {limit}-byte limit"
                )
            digest = hashlib.sha256()
            size = 0
            head = b""
            async for data in response.content.iter_chunked(64 * 1024):
                size += len(data)
                if size > limit:
                    raise Rejected(f"{job.kind} is over the {limit}-byte limit")
                if len(head) < sniff.HEAD_BYTES:
                    head += data[: sniff.HEAD_BYTES - len(head)]
                digest.update(data)
                await writer.write(data)
        if size == 0:
            raise Rejected("the file is empty")
        if digest.digest() != expected:
            raise Rejected("the file's SHA-256 does not match what Meta announced")
        problem = sniff.mismatch(mime, head, document=job.kind == "document")
        if problem:
            raise Rejected(problem)
        key = await writer.finish()
    except (aiohttp.ClientError, TimeoutError) as exc:
        writer.abort()
        raise Transient(f"media download: {type(exc).__name__}") from None
    except BaseException:
        writer.abort()
        raise
    return Downloaded(key, size, digest.hexdigest(), mime)


async def download_file(job: Job) -> Downloaded:
    for _ in range(URL_ATTEMPTS):
        info = await lookup(job)
        url, mime, _, expected = check_lookup(job, info)
        done = await fetch(job, url, mime, expected)
        if done is not None:
            return done
    raise Transient("the media url kept expiring")


async def download(db: AsyncSession, message_id: int) -> str | None:
    """The ``media.download`` task: the media's new state, or ``None`` when there was nothing to
    do (done already, or the message is gone). Raises to have the job retried."""
    job = await prepare(message_id)
    if job is None:
        return None
    values: dict[str, Any]
    try:
        done = await download_file(job)
    except Rejected as exc:
        values = {"state": REJECTED, "reason": str(exc)[:200]}
    except Unavailable as exc:
        values = {"state": FAILED, "reason": str(exc)[:200]}
    except Transient as exc:
        claim = runner.current()
        if claim is not None and claim.attempt < claim.max_attempts:
            raise
        values = {
            "state": FAILED,
            "reason": f"gave up after {claim.attempt if claim else 1} attempts: {exc}"[:200],
        }
    else:
        values = {
            "state": STORED,
            "reason": None,
            "mime_type": done.mime_type,
            "size": done.size,
            "sha256": done.sha256,
            "storage_key": done.storage_key,
            "stored_at": clock.now(),
        }
    values["updated_at"] = clock.now()
    if not await repo.settle(db, job.media_id, PENDING, **values):
        store.delete(values.get("storage_key"))  # another attempt finished first
        return None
    await audit.record(
        db,
        actor="system",
        action=f"media.{values['state']}",
        subject=store.subject_of(job.contact_id),
        workspace_id=job.workspace_id,
        data={"message_id": job.message_id, "media_file_id": job.media_id},
    )
    return str(values["state"])


# -- serving -----------------------------------------------------------------------------------
@dataclass
class Opened:
    mime_type: str
    size: int
    filename: str
    inline: bool
    chunks: AsyncIterator[bytes]


EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
}


async def _first_then_rest(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def open_for(db: AsyncSession, principal: Principal, message_id: int) -> Opened:
    """The decrypted media of a message in the caller's workspace (audited as viewed). 404 for
    messages of other workspaces, a message without media, or media not stored (yet); 410 when
    the contact was erased."""
    from connectx.messages import repository as messages
    from connectx.messages.service import CONTENT
    from connectx.messages.service import subject_of as contact_subject

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    media = await repo.in_workspace_by_message(db, ws, message_id)
    if media is None:
        raise NotFound(f"Message {message_id} has no media in this workspace.")
    if media.state != STORED or not media.storage_key:
        raise NotFound(
            f"The media of message {message_id} is {media.state}"
            + (f": {media.reason}" if media.reason else "")
            + "."
        )
    vault = Vault(db)
    chunks = store.open_chunks(vault, ws, media.contact_id, media.storage_key)
    try:
        first = await anext(chunks)
    except KeyDestroyed:
        raise Gone(f"The media of message {message_id} was erased with its contact.") from None
    except (CryptoError, FileNotFoundError, StopAsyncIteration):
        log.error("media file of media_files.id=%s cannot be opened", media.id)
        raise Gone(f"The media of message {message_id} can no longer be read.") from None
    mime = media.mime_type or "application/octet-stream"
    filename = f"message-{message_id}.{EXTENSIONS.get(mime, 'bin')}"
    message = await messages.by_id(db, message_id)
    if message is not None:
        opened = await vault.decrypt_or_none(
            ws, contact_subject(message.contact_id), CONTENT, message.content_enc
        )
        try:
            named = json.loads(opened).get("filename") if opened else None
        except (ValueError, AttributeError):
            named = None
        if isinstance(named, str) and named.strip():
            filename = named
    await audit.record(
        db,
        actor=principal.actor,
        action="media.viewed",
        subject=store.subject_of(media.contact_id),
        workspace_id=ws,
        ip=principal.ip,
        data={"message_id": message_id, "media_file_id": media.id},
    )
    inline = mime.split("/")[0] in ("image", "audio", "video")
    return Opened(mime, media.size or 0, filename, inline, _first_then_rest(first, chunks))
