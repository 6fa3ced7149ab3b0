"""Owners and admins read their workspace's audit log: filtered pages and exports (CSV, JSON).
Reading the log is itself recorded (``audit.viewed``, ``audit.exported``) with the filters used,
in the same transaction. See docs/audit.md."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import repository as repo
from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.kit.numbers import is_digits
from connectx.models.audit import AuditEvent
from connectx.privacy import purpose

purpose.register(
    "audit.export",
    purpose.Use.LEGAL,
    list(AuditEvent.__table__.columns),
    "connectx.audit.endpoints",
)

PAGE = 50
MAX_PAGE = 200
EXPORT_LIMIT = 50_000
FORMATS = ("csv", "json")
COLUMNS = ("id", "at", "actor", "action", "subject", "ip", "reason", "data", "hash")


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    subject: str | None = None
    action: str | None = None
    since: date | None = None  # from the start of this day (UTC)
    until: date | None = None  # to the end of this day (UTC)

    def used(self) -> dict[str, str]:
        """The filters given, for the audit entry of the read (ids and dates only)."""
        return {
            k: str(v)
            for k, v in (
                ("actor", self.actor),
                ("subject", self.subject),
                ("action", self.action),
                ("since", self.since),
                ("until", self.until),
            )
            if v
        }


def _ref(value: str | None, field: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not audit.is_ref(value):
        raise InvalidInput(
            f"{field} is an id like user:12, api_key:3, contact:5 or system.", field=field
        )
    return value


def _day(value: str | None, field: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} is a date like 2026-12-03.", field=field) from None


def filters(
    actor: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Filters:
    """Filters from what a person typed, checked (a 422 names what is wrong)."""
    act = (action or "").strip() or None
    if act is not None and (len(act) > 64 or not all(c.isalnum() or c in "._*" for c in act)):
        raise InvalidInput(
            "action is like contact.viewed, or a prefix with * like contact.*", field="action"
        )
    result = Filters(
        _ref(actor, "actor"),
        _ref(subject, "subject"),
        act,
        _day(since, "since"),
        _day(until, "until"),
    )
    if result.since and result.until and result.since > result.until:
        raise InvalidInput("since is after until.", field="since")
    return result


def _query(workspace_id: int, f: Filters, before_id: int | None = None) -> Any:
    return repo.search_query(
        workspace_id,
        actor=f.actor,
        subject=f.subject,
        action=f.action,
        since=datetime.combine(f.since, time(), UTC) if f.since else None,
        until=datetime.combine(f.until, time(), UTC) + timedelta(days=1) if f.until else None,
        before_id=before_id,
    )


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.created_at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "ip": event.ip_truncated,
        "reason": event.reason,
        "data": event.data or {},
        "hash": event.hash,
    }


async def page(
    db: AsyncSession, principal: Principal, f: Filters, cursor: str | None, limit: int = PAGE
) -> tuple[list[AuditEvent], str | None]:
    """One page, newest first; the cursor of the next (older) page or None."""
    assert principal.workspace_id is not None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}.", field="limit")
    before = None
    if cursor:
        if not is_digits(cursor):
            raise InvalidInput("cursor is the next_cursor of the previous page.", field="cursor")
        before = int(cursor)
    rows = await repo.search(db, _query(principal.workspace_id, f, before), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    await audit.record(
        db,
        actor=principal.actor,
        action="audit.viewed",
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"filters": f.used(), "entries": len(rows)},
    )
    return rows, str(rows[-1].id) if more else None


async def export(
    db: AsyncSession, principal: Principal, f: Filters, fmt: str
) -> tuple[str, str, str]:
    """The matching entries as (body, media type, file name); the export is recorded first."""
    assert principal.workspace_id is not None
    if fmt not in FORMATS:
        raise InvalidInput("format is csv or json.", field="format")
    rows = await repo.search(db, _query(principal.workspace_id, f), EXPORT_LIMIT + 1)
    if len(rows) > EXPORT_LIMIT:
        raise InvalidInput(
            f"More than {EXPORT_LIMIT:,} entries match: narrow the dates (since, until).",
            field="since",
        )
    await audit.record(
        db,
        actor=principal.actor,
        action="audit.exported",
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"filters": f.used(), "entries": len(rows), "format": fmt},
    )
    items = [as_dict(e) for e in rows]
    name = f"audit-ws{principal.workspace_id}-{clock.now():%Y%m%dT%H%M%SZ}.{fmt}"
    if fmt == "json":
        return json.dumps(items, ensure_ascii=False, indent=1), "application/json", name
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        item["data"] = json.dumps(item["data"], sort_keys=True, separators=(",", ":"))
        writer.writerow([_cell(item[c]) for c in COLUMNS])
    return out.getvalue(), "text/csv; charset=utf-8", name


def _cell(value: Any) -> Any:
    """No spreadsheet formula injection: a text cell never starts with = + - @."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value
