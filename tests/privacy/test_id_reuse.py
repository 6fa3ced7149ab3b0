"""Ids that name people are never handed out again (SQLite reused a deleted row's id without
AUTOINCREMENT): a user created after the newest user was erased must not inherit the erased
user's consent records, policy acceptances, audit trail or data key."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.audit import AuditEvent
from connectx.models.policy import PolicyAcceptance, PolicyVersion
from connectx.privacy import consent
from connectx.privacy.rights import Outcome, Right, Subject, execute
from connectx.privacy.vault import Vault
from tests.privacy.rights_support import make_contact, make_workspace
from tests.support.factories import make_user


async def _acceptances(user_id: int) -> int:
    async with unit_of_work() as db:
        stmt = select(func.count()).where(PolicyAcceptance.user_id == user_id)
        return int((await db.execute(stmt)).scalar_one())


async def _audit_of(subject: str) -> list[int]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent.id).where(AuditEvent.subject == subject)
        return list((await db.execute(stmt)).scalars())


async def test_a_user_created_after_the_newest_was_erased_inherits_nothing(app: Any) -> None:
    await make_user()  # someone older, so the erased one is the newest but not the only one
    erased = await make_user(email="erased@example.com")
    async with unit_of_work() as db:
        await consent.record(
            db,
            subject=f"user:{erased.id}",
            workspace_id=None,
            purpose="marketing",
            channel="email",
            granted=True,
            source="signup_form",
            wording="Send me news",
            notice_version="2025-08-02",
            actor=f"user:{erased.id}",
        )
        version = PolicyVersion(
            kind="privacy",
            effective_on=date(2026, 1, 1),
            title="Privacy Policy",
            body="text",
            body_sha256="0" * 64,
            published_by="operator",
            published_at=clock.now(),
        )
        db.add(version)
        await db.flush()
        db.add(PolicyAcceptance(user_id=erased.id, version_id=version.id, accepted_at=clock.now()))
    assert await _acceptances(erased.id) > 0
    async with unit_of_work() as db:
        theirs = {r.id for r in await consent.history(db, f"user:{erased.id}")}
    assert theirs
    async with unit_of_work() as db:
        result = await execute(db, Right.ERASURE, Subject.user(erased.id), actor="operator")
    assert result.outcome is Outcome.PARTIAL
    before = max(await _audit_of(f"user:{erased.id}"))

    newcomer = await make_user(email="newcomer@example.com")

    assert newcomer.id > erased.id
    async with unit_of_work() as db:
        mine = {r.id for r in await consent.history(db, f"user:{newcomer.id}")}
    assert not mine & theirs  # only the records of their own sign-up, if any
    assert await _acceptances(newcomer.id) == 0
    assert all(i > before for i in await _audit_of(f"user:{newcomer.id}"))
    info = await Vault().key_info(None, f"user:{newcomer.id}")
    assert info is not None and info.version == 1 and not info.destroyed


async def test_contact_and_workspace_ids_are_not_reused_after_a_delete() -> None:
    from sqlalchemy import delete

    from connectx.models.contact import Contact
    from connectx.models.workspace import Workspace

    ws = await make_workspace()
    gone_ws = await make_workspace("Gone")
    kept = await make_contact(ws, "+971501234567")
    gone = await make_contact(ws, "+971501234568")
    async with unit_of_work() as db:
        await db.execute(delete(Contact).where(Contact.id == gone))
        await db.execute(delete(Workspace).where(Workspace.id == gone_ws))
    assert await make_contact(ws, "+971501234569") > gone > kept
    assert await make_workspace("Next") > gone_ws


# -- migration 0004p on an existing SQLite database -----------------------------------------

REBUILT = (
    "workspaces",
    "users",
    "invitations",
    "api_keys",
    "meta_apps",
    "channels",
    "contacts",
    "data_requests",
    "recipient_notices",
)


def _value(column: Any, n: int) -> Any:
    import sqlalchemy as sa

    if column.foreign_keys:
        return n  # row n of the parent
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return 0
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, (sa.Float, sa.Numeric)):
        return n
    if isinstance(kind, sa.DateTime):
        return f"2026-01-0{n} 00:00:00.000000"
    if isinstance(kind, sa.Date):
        return f"2026-01-0{n}"
    if isinstance(kind, sa.LargeBinary):
        return bytes([n]) * 8
    if isinstance(kind, sa.JSON):
        return "{}"
    return f"v{n}"


def _seed_every_table(path: str) -> set[str]:
    """Rows 1 and 2 in every table whose constraints accept generic values (row n refers to row
    n of its parents); the rebuilt tables get a row 3, deleted again (their newest rows were
    erased before the migration)."""
    import sqlite3

    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    meta = sa.MetaData()
    meta.reflect(engine)
    engine.dispose()
    seeded: set[str] = set()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    for table in meta.sorted_tables:
        if table.name == "alembic_version":
            continue
        try:
            for n in (1, 2, 3) if table.name in REBUILT else (1, 2):
                row = {c.name: _value(c, n) for c in table.columns}
                names = ", ".join(f'"{k}"' for k in row)
                marks = ", ".join("?" for _ in row)
                conn.execute(
                    f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(row.values())
                )
        except sqlite3.DatabaseError:
            conn.rollback()
            continue
        conn.commit()
        seeded.add(table.name)
    for table in REBUILT:  # the newest rows are deleted before the migration
        conn.execute(f"DELETE FROM {table} WHERE id = 3")
    # The audit log still names rows deleted earlier: a workspace and a contact created (3),
    # an account erased (user 9).
    for n, (ws, subject) in enumerate(((3, "workspace:3"), (3, "contact:3"), (None, "user:9"))):
        conn.execute(
            "INSERT INTO audit_events (workspace_id, actor, action, subject, data, created_at, "
            "prev_hash, hash) VALUES (?, 'operator', 'x.created', ?, '{}', '2026-01-01', ?, ?)",
            (ws, subject, "0" * 64, str(n) * 64),
        )
    conn.commit()
    conn.close()
    return seeded


def _schema(path: str) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(path)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version'"
        )
    ]
    out: dict[str, Any] = {}
    for t in sorted(tables):
        out[t] = {
            "rows": conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall(),
            "fks": sorted(r[1:] for r in conn.execute(f"PRAGMA foreign_key_list({t})")),
            "columns": conn.execute(f"PRAGMA table_info({t})").fetchall(),
            "indexes": sorted(
                (name, sql or "")
                for name, sql in conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=?", (t,)
                )
                if not name.startswith("sqlite_autoindex")
            ),
            "unique": sorted(
                tuple(r[1] for r in conn.execute(f"PRAGMA index_info({name})"))
                for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({t})")
                if unique
            ),
            "triggers": sorted(
                conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?", (t,)
                ).fetchall()
            ),
        }
    conn.close()
    return out


async def test_migration_keeps_data_and_foreign_keys_of_an_existing_sqlite_database(
    tmp_path: Any,
) -> None:
    import asyncio
    import sqlite3

    import pytest

    from connectx.db.migrate import upgrade
    from tests.privacy.support import is_postgres

    if is_postgres():
        pytest.skip("a SQLite table rebuild (PostgreSQL sequences never reuse: no-op there)")
    path = str(tmp_path / "old.db")
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url, "0003ic")
    seeded = _seed_every_table(path)
    assert set(REBUILT) <= seeded
    assert {"memberships", "conversations", "messages"} <= seeded  # children of rebuilt tables
    before = _schema(path)

    await asyncio.to_thread(upgrade, url, "0004p")

    after = _schema(path)
    assert after.keys() == before.keys()
    for table in before:
        assert after[table]["rows"] == before[table]["rows"], table
        assert after[table]["fks"] == before[table]["fks"], table
        assert after[table]["indexes"] == before[table]["indexes"], table
        assert after[table]["unique"] == before[table]["unique"], table
        assert after[table]["triggers"] == before[table]["triggers"], table
        assert len(after[table]["columns"]) == len(before[table]["columns"]), table
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for table in REBUILT:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
        assert "AUTOINCREMENT" in sql, table
    # Ids the audit log names are not handed out again (workspace 3, deleted; user 9, erased).
    conn.execute("INSERT INTO workspaces (name, created_at, updated_at) VALUES ('n', '', '')")
    assert conn.execute("SELECT max(id) FROM workspaces").fetchone()[0] == 4
    seq = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    assert seq["users"] == 9 and seq["contacts"] == 3
    # Foreign keys still act on the rebuilt tables.
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute(
            "INSERT INTO contacts (workspace_id, created_at, updated_at) VALUES (99, '', '')"
        )
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("UPDATE memberships SET user_id = 99 WHERE user_id = 1")
    conn.rollback()
    conn.close()
