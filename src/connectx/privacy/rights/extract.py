"""A subject's records as plain values: encrypted columns opened under the subject's key,
credentials and keyed hashes withheld, references to other people reduced to their kind."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.crypto import CryptoError
from connectx.kit.inventory import Declaration
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Subject
from connectx.privacy.rights.records import Found, tables_for
from connectx.privacy.vault import Vault

# Sealed columns whose associated-data name is not "<table>.<column without _enc>".
_AAD = {("mail_messages", "subject_line_enc"): "mail_messages.subject"}
# Columns that locate a sealed file rather than hold a value (the file itself is exported).
_LOCATIONS = {"storage_key"}
_DERIVED = ("blind_index", "pseudonymous")
_SECRET_PREFIXES = ("user.authentication", "system.credential")
_REF_COLUMNS = ("subject", "actor")


CREDENTIALS = "security credentials (hashes of passwords, tokens and codes)"
LOOKUP_HASHES = "keyed hashes used for lookups (meaningless without our keys)"
UNREADABLE = "values of someone else or already erased"
# What a copy leaves out -> why, in words told to the person, and the basis (rights.base.Kept).
WHY_WITHHELD = {
    CREDENTIALS: (
        "they would let someone sign in or act as you, and tell nothing about you",
        "security",
    ),
    LOOKUP_HASHES: (
        "they only let us find your records and reveal nothing by themselves",
        "security",
    ),
    UNREADABLE: (
        "they are sealed under another person's key, or their key was destroyed when they were "
        "erased, so no one can read them",
        "other_people",
    ),
}


def withheld(decl: Declaration) -> str | None:
    """What a column counts as when it is not handed out, or None."""
    if decl.category.startswith(_SECRET_PREFIXES):
        return CREDENTIALS
    if decl.category.rsplit(".", 1)[-1] in _DERIVED:
        return LOOKUP_HASHES
    return None


@dataclass
class Table:
    name: str
    about: bool  # rows about the subject (else: what the subject did)
    columns: list[str]
    rows: list[dict[str, Any]]
    declarations: dict[str, Declaration]


@dataclass
class Extract:
    subject: Subject
    tables: list[Table] = field(default_factory=list)
    withheld: set[str] = field(default_factory=set)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _maybe_json(text: str) -> Any:
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _ref(value: Any, subject: Subject) -> Any:
    """A reference to someone other than the subject keeps only its kind ("user:3" -> "user")."""
    if isinstance(value, str) and ":" in value and value != subject.ref:
        return value.split(":", 1)[0]
    return value


async def _open(
    vault: Vault, subject: Subject, table: str, column: str, blob: Any
) -> tuple[Any, bool]:
    if not isinstance(blob, bytes):
        return blob, True
    aad = _AAD.get((table, column), f"{table}.{column.removesuffix('_enc')}")
    try:
        text = await vault.decrypt(subject.workspace_id, subject.ref, aad, blob)
    except CryptoError:  # erased, or sealed for someone else: nothing readable to hand out
        return None, False
    return _maybe_json(text), True


async def _row(
    vault: Vault, subject: Subject, found: Found, decls: dict[str, Declaration], raw: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    out: dict[str, Any] = {}
    kept_back: set[str] = set()
    name = found.table.name
    for column, value in raw.items():
        decl = decls.get(column)
        if decl is None or column in _LOCATIONS:
            continue
        why = withheld(decl)
        if why:
            if value is not None:
                kept_back.add(why)
            continue
        if not found.about and decl.personal:
            continue  # the subject acted here; the row is about someone else
        if decl.encrypted:
            value, readable = await _open(vault, subject, name, column, value)
            column = column.removesuffix("_enc")
            if not readable:
                kept_back.add(UNREADABLE)
        elif column in _REF_COLUMNS or column.endswith("_by"):
            value = _ref(value, subject)
        out[column] = _plain(value)
    return out, kept_back


async def extract(db: AsyncSession, subject: Subject) -> Extract:
    """Every record about (or made by) ``subject``, table by table, as JSON-ready values."""
    vault = Vault(db)
    result = Extract(subject)
    for found in tables_for(subject):
        decls = found.declarations()
        rows = []
        for raw in await repo.rows_of(db, found, subject):
            row, kept_back = await _row(vault, subject, found, decls, raw)
            rows.append(row)
            result.withheld |= kept_back
        if rows:
            columns = list(rows[0])
            result.tables.append(Table(found.table.name, found.about, columns, rows, decls))
    return result
