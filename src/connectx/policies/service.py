"""Versioned policy documents (the privacy policy and the terms), material changes, acceptances.

Policy §10: a new version carries a new "Last Updated" date and is in force once published. The
version each document started with is the text shipped with the product (``web/content/
privacy-policy.txt``, ``policies/content/terms.txt``); later versions are published with
``connectx policy publish`` and kept in the database, so every earlier version stays readable at
``/privacy/versions/<date>``. A material change e-mails every account holder, shows a banner, and
asks each of them to accept it before their signed-in pages open again; acceptances are recorded
per version (append-only) and audited.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.db.session import read_only
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput, NotFound
from connectx.models.policy import PolicyAcceptance, PolicyVersion
from connectx.policies import repository as repo
from connectx.web import policy as parser

CONTENT = Path(__file__).resolve().parent / "content"


@dataclass(frozen=True)
class Kind:
    name: str  # "privacy" | "terms"
    label: str  # "Privacy Policy"
    path: str  # "/privacy"
    baseline: Path


KINDS: dict[str, Kind] = {
    "privacy": Kind("privacy", "Privacy Policy", "/privacy", parser.POLICY_FILE),
    "terms": Kind("terms", "Terms of Service", "/terms", CONTENT / "terms.txt"),
}


@dataclass(frozen=True)
class Version:
    kind: str
    id: int | None  # None: the text shipped with the product
    effective_on: date
    material: bool
    summary: str | None
    published_at: datetime | None
    body: str

    @property
    def document(self) -> parser.Policy:
        return _parsed(self.body)

    @property
    def title(self) -> str:
        return self.document.title

    @property
    def key(self) -> str:
        return self.effective_on.isoformat()

    @property
    def url(self) -> str:
        return f"{KINDS[self.kind].path}/versions/{self.key}"


_parse_cache: dict[str, parser.Policy] = {}


def _parsed(body: str) -> parser.Policy:
    digest = hashlib.sha256(body.encode()).hexdigest()
    found = _parse_cache.get(digest)
    if found is None:
        found = _parse_cache[digest] = parser.parse(body)
    return found


def _kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown document {name!r}: use one of {', '.join(KINDS)}.", field="kind"
        ) from None


def baseline(kind: str) -> Version:
    text = _kind(kind).baseline.read_text(encoding="utf-8")
    return Version(kind, None, _parsed(text).last_updated, False, None, None, text)


def _of(row: PolicyVersion) -> Version:
    return Version(
        row.kind, row.id, row.effective_on, row.material, row.summary, row.published_at, row.body
    )


# Published versions change rarely: every process keeps them for a few seconds.
_CACHE_S = 15.0
_cache_lock = threading.Lock()
_cache: tuple[float, dict[str, list[Version]]] | None = None


def forget_cache() -> None:
    global _cache
    with _cache_lock:
        _cache = None


async def _all(db: AsyncSession | None = None) -> dict[str, list[Version]]:
    """Every version of every kind, oldest first (the shipped text first)."""
    global _cache
    with _cache_lock:
        cached = _cache
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    if db is None:
        # Read-only: on SQLite a unit of work would take the write lock, and wait for the
        # caller's own request transaction when it holds it (GET /api/v1/policies signed in).
        async with read_only(plain_reads=True) as own:
            rows = [_of(r) for r in await repo.versions(own)]  # before the rollback expires them
    else:
        rows = [_of(r) for r in await repo.versions(db)]
    out: dict[str, list[Version]] = {}
    for name in KINDS:
        first = baseline(name)
        published = [v for v in rows if v.kind == name]
        out[name] = [first, *[v for v in published if v.effective_on > first.effective_on]]
    with _cache_lock:
        _cache = (time.monotonic() + _CACHE_S, out)
    return out


async def versions(kind: str, db: AsyncSession | None = None) -> list[Version]:
    _kind(kind)
    return (await _all(db))[kind]


async def current(kind: str, db: AsyncSession | None = None) -> Version:
    return (await versions(kind, db))[-1]


async def version_on(kind: str, key: str, db: AsyncSession | None = None) -> Version:
    for v in await versions(kind, db):
        if v.key == key:
            return v
    raise NotFound(
        f"There is no {KINDS[kind].label} dated {key}. The list of versions is at "
        f"{KINDS[kind].path}/versions."
    )


async def recent_material_change(db: AsyncSession | None = None) -> Version | None:
    """The newest material change published within the banner period (for every page)."""
    days = get_settings().policy_banner_days
    since = clock.now() - timedelta(days=days)
    newest: Version | None = None
    for items in (await _all(db)).values():
        for v in items:
            if (
                v.material
                and v.published_at is not None
                and v.published_at >= since
                and (newest is None or v.published_at > (newest.published_at or since))
            ):
                newest = v
    return newest


# -- publishing -------------------------------------------------------------------------------


async def publish(
    db: AsyncSession,
    *,
    kind: str,
    text: str,
    material: bool,
    summary: str | None = None,
    actor: str = "operator",
) -> PolicyVersion:
    """Publish a new version. Its "Last Updated" date must be later than the current one's. A
    material change queues the e-mail to every account holder (``policies.notify``)."""
    k = _kind(kind)
    try:
        document = parser.parse(text)
    except parser.PolicyFormatError as exc:
        raise InvalidInput(f"The document cannot be published: {exc}.", field="file") from exc
    now_current = await current(kind, db)
    if document.last_updated <= now_current.effective_on:
        raise Conflict(
            f'The new {k.label} must have a later "Last Updated" date than the current one '
            f"({now_current.document.last_updated_text}); it says "
            f"{document.last_updated_text}."
        )
    clean_summary = " ".join((summary or "").split()) or None
    if material and not clean_summary:
        raise InvalidInput(
            "Say in a sentence or two what changed: account holders are e-mailed it.",
            field="summary",
        )
    row = await repo.add_version(
        db,
        PolicyVersion(
            kind=kind,
            effective_on=document.last_updated,
            title=document.title[:200],
            body=text,
            body_sha256=hashlib.sha256(text.encode()).hexdigest(),
            material=material,
            summary=clean_summary,
            published_by=actor,
            published_at=clock.now(),
        ),
    )
    await audit.record(
        db,
        actor=actor,
        action="policy.published",
        data={"version_id": row.id, "kind": kind, "material": material},
    )
    if material:
        await enqueue(db, "policies.notify", {"version_id": row.id, "after_user_id": 0})
    forget_cache()
    return row


# -- acceptance ---------------------------------------------------------------------------------


async def due_for(db: AsyncSession, user_id: int) -> list[Version]:
    """The material changes this account holder has not accepted yet (one per document): the
    newest material version published after the account was created, unless the person
    accepted it or a later version."""
    documents = await _all(db)
    if not any(v.material and v.id is not None for items in documents.values() for v in items):
        return []  # nothing was ever a material change: no query per page
    created = await repo.user_created_at(db, user_id)
    if created is None:
        return []
    due: list[Version] = []
    for kind, items in documents.items():
        material = [v for v in items if v.material and v.id is not None]
        if not material:
            continue
        newest = material[-1]
        assert newest.published_at is not None and newest.id is not None
        if newest.published_at <= created:
            continue  # the account was opened under this version
        accepted = await repo.latest_acceptance(db, user_id, kind)
        if accepted is not None and accepted >= newest.id:
            continue
        due.append(items[-1])  # accepting means accepting the version in force
    return due


async def accept(db: AsyncSession, user_id: int, *, ip: str | None = None) -> list[Version]:
    """Record the account holder's acceptance of every document version due for them."""
    due = await due_for(db, user_id)
    for version in due:
        assert version.id is not None
        if await repo.accepted_ids(db, user_id, [version.id]):
            continue
        row = await repo.add_acceptance(
            db,
            PolicyAcceptance(
                user_id=user_id, version_id=version.id, accepted_at=clock.now(), ip_truncated=ip
            ),
        )
        await audit.record(
            db,
            actor=f"user:{user_id}",
            action="policy.accepted",
            subject=f"user:{user_id}",
            ip=ip,
            data={"acceptance_id": row.id, "version_id": version.id, "kind": version.kind},
        )
    return due


# -- notifying ----------------------------------------------------------------------------------

NOTIFY_BATCH = 200


async def notify_batch(db: AsyncSession, version_id: int, after_user_id: int) -> int | None:
    """E-mail the next batch of account holders about a material change. Returns the last user
    id mailed when more may follow, else None."""
    from connectx.accounts import repository as accounts_repo
    from connectx.accounts import service as accounts
    from connectx.kit.crypto import KeyDestroyed
    from connectx.mail import service as mail

    row = await repo.get(db, version_id)
    if row is None or not row.material:
        return None
    k = KINDS[row.kind]
    url = f"{get_settings().effective_public_url}{k.path}"
    document = _parsed(row.body)
    ids = await repo.user_ids_after(db, after_user_id, NOTIFY_BATCH)
    sent = 0
    for user_id in ids:
        user = await accounts_repo.get_user(db, user_id)
        if user is None or user.created_at >= row.published_at:
            continue
        try:
            email = await accounts.email_of(db, user)
            name = await accounts.name_of(db, user)
        except KeyDestroyed:
            continue  # an erased account
        await mail.send(
            db,
            to=email,
            subject=f"We have updated our {k.label}",
            body=(
                f"Hello {name},\n\n"
                f"We have made changes to our {k.label} that matter to you. The new version is "
                f"dated {document.last_updated_text}.\n\n"
                f"What changed: {row.summary}\n\n"
                f"Read it here: {url}\n"
                f"Earlier versions: {url}/versions\n\n"
                "The next time you sign in to ConnectX we will ask you to accept it.\n"
            ),
            kind="policy_changed",
            subject_ref=f"user:{user_id}",
            user_id=user_id,
        )
        sent += 1
    await audit.record(
        db,
        actor="system",
        action="policy.notified",
        data={"version_id": version_id, "count": sent, "after_user_id": after_user_id},
    )
    return ids[-1] if len(ids) == NOTIFY_BATCH else None
