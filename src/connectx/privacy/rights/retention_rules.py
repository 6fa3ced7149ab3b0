"""What retention removes of the rights tables (imported by :mod:`connectx.retention.rules`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.inventory import Retention
from connectx.models.privacy_rights import PrivacyExport, ProcessingRestriction, RecipientNotice
from connectx.retention.rules import Rule, register


async def _delete_export_files(db: AsyncSession, ids: list[int]) -> dict[str, Any]:
    """Sealed archives never downloaded: deleted once the batch commits."""
    from connectx.db.session import after_commit
    from connectx.privacy.rights.exports import delete_files

    stmt = select(PrivacyExport.storage_key).where(PrivacyExport.id.in_(ids))
    keys = [k for k in (await db.execute(stmt)).scalars() if k]
    if keys:

        async def remove() -> None:
            await delete_files(keys)

        after_commit(db, remove)
    return {"files": len(keys)}


register(
    Rule(
        "privacy_exports",
        PrivacyExport.__table__,
        Retention.SHORT_LIVED_TOKEN,
        anchor=func.coalesce(PrivacyExport.downloaded_at, PrivacyExport.expires_at),
        workspace=PrivacyExport.workspace_id,
        subject=PrivacyExport.subject,
        before_batch=_delete_export_files,
        describe="access and portability archives, downloaded or expired",
    )
)
register(
    Rule(
        "processing_restrictions",
        ProcessingRestriction.__table__,
        Retention.AUDIT_FLOOR,
        anchor=ProcessingRestriction.lifted_at,
        ready=ProcessingRestriction.lifted_at.is_not(None),
        workspace=ProcessingRestriction.workspace_id,
        subject=ProcessingRestriction.subject,
        describe="lifted restrictions of processing (proof kept as long as the audit log)",
    )
)
register(
    Rule(
        "recipient_notices",
        RecipientNotice.__table__,
        Retention.AUDIT_FLOOR,
        anchor=RecipientNotice.created_at,
        ready=RecipientNotice.status.in_(("acknowledged", "failed")),
        workspace=RecipientNotice.workspace_id,
        subject=RecipientNotice.subject,
        describe="notices to recipients (proof of GDPR art. 19 kept as long as the audit log)",
    )
)
