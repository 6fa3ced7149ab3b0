"""SQL of backups: erased subjects (from the key store) and removing what a backup brings back
of them (from the data database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.account import User
from connectx.models.crypto_key import CryptoKey
from connectx.models.mail import MailMessage
from connectx.models.workspace import Invitation


@dataclass(frozen=True)
class Erased:
    scope: str  # "platform" or "ws:<id>"
    subject: str  # "user:12", "contact:5"
    destroyed_at: datetime | None


async def erased_subjects(ks: AsyncSession, since: datetime) -> list[Erased]:
    """Subjects whose newest key is destroyed (erased and not come back), and subjects with a
    key destroyed at or after ``since`` (erased after the backup was taken). ``ks`` is a
    key-store session."""
    newest = (
        select(
            CryptoKey.scope,
            CryptoKey.subject,
            func.max(CryptoKey.version).label("version"),
        )
        .where(CryptoKey.kind == "subject")
        .group_by(CryptoKey.scope, CryptoKey.subject)
        .subquery()
    )
    latest_destroyed = (
        select(CryptoKey.scope, CryptoKey.subject, CryptoKey.destroyed_at)
        .join(
            newest,
            (CryptoKey.scope == newest.c.scope)
            & (CryptoKey.subject == newest.c.subject)
            & (CryptoKey.version == newest.c.version),
        )
        .where(CryptoKey.kind == "subject", CryptoKey.wrapped.is_(None))
    )
    recent = select(CryptoKey.scope, CryptoKey.subject, CryptoKey.destroyed_at).where(
        CryptoKey.kind == "subject",
        CryptoKey.wrapped.is_(None),
        CryptoKey.destroyed_at.is_not(None),
        CryptoKey.destroyed_at >= since,
    )
    found: dict[tuple[str, str], Erased] = {}
    for stmt in (latest_destroyed, recent):
        for scope, subject, at in (await ks.execute(stmt)).all():
            found[(scope, subject)] = Erased(scope, subject, at)
    return [found[k] for k in sorted(found)]


async def destroyed_subject_keys(ks: AsyncSession) -> list[int]:
    """Ids of every destroyed subject key (``ks``: a key-store session)."""
    stmt = select(CryptoKey.id).where(CryptoKey.kind == "subject", CryptoKey.wrapped.is_(None))
    return [int(v) for v in (await ks.execute(stmt)).scalars()]


async def delete_user(db: AsyncSession, user_id: int) -> int:
    """The account row (its sessions, links, codes, memberships and sign-ins cascade)."""
    result = await db.execute(delete(User).where(User.id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_mail_of(db: AsyncSession, subject: str) -> int:
    result = await db.execute(delete(MailMessage).where(MailMessage.subject == subject))
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_invitation(db: AsyncSession, invitation_id: int) -> int:
    result = await db.execute(delete(Invitation).where(Invitation.id == invitation_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def revisions(db: AsyncSession) -> list[str]:
    """The database's migration revisions (``alembic_version``)."""
    rows = await db.execute(text("SELECT version_num FROM alembic_version"))
    return sorted(str(r[0]) for r in rows.all())
