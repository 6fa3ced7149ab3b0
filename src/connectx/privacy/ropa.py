"""The record of processing (GDPR art. 30 style), generated from the data inventory.

Nothing here is written by hand: every persisted column's declaration (category, purpose,
lawful basis, retention class, encryption), the retention schedule and the recipient registry
are joined into one document, printed by ``connectx privacy ropa`` as JSON or Markdown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData

from connectx import __version__
from connectx.kit.inventory import Declaration, declaration_of
from connectx.privacy import purpose
from connectx.privacy.processors import REGISTRY, recipients_of
from connectx.privacy.retention_schedule import SCHEDULE, period_of

# The record of processing reads declarations, never a row.
purpose.register("privacy.ropa", purpose.Use.LEGAL, [], "connectx.privacy.ropa")

CONTROLLER = {
    "name": "ConnectX",
    "address": "Dubai Digital Park, Dubai Silicon Oasis, Dubai, United Arab Emirates, "
    "P.O. Box 341041",
    "dpo": "Data Protection Officer, support@connectxsaudi.com",
    "policy": "/privacy",
}


@dataclass(frozen=True)
class Column:
    store: str  # "data" (the database) or "keystore"
    table: str
    column: str
    declaration: Declaration


def _stores() -> list[tuple[str, MetaData]]:
    import connectx.models  # noqa: F401  (registers every table)
    from connectx.db.base import Base
    from connectx.models.crypto_key import KeyStoreBase

    return [("data", Base.metadata), ("keystore", KeyStoreBase.metadata)]


def inventory() -> list[Column]:
    """Every persisted column with its declaration; raises if one has none."""
    out = []
    for store, metadata in _stores():
        for table in sorted(metadata.tables.values(), key=lambda t: t.name):
            for col in table.columns:
                decl = declaration_of(col)
                if decl is None:
                    raise LookupError(f"{table.name}.{col.name} has no data-inventory declaration")
                out.append(Column(store, table.name, col.name, decl))
    return out


def _recipient(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "kind": str(r.kind),
        "role": str(r.role),
        "service": r.service,
        "purposes": [str(p) for p in r.purposes],
        "lawful_bases": [str(b) for b in r.bases],
        "categories": list(r.categories),
        "location": r.location,
        "safeguards": r.safeguards,
        "when": r.when,
    }


def build() -> dict[str, Any]:
    """The record of processing as a JSON-ready dict (deterministic: sorted, no timestamps)."""
    columns = inventory()
    by_category: dict[str, list[Column]] = defaultdict(list)
    by_table: dict[tuple[str, str], list[Column]] = defaultdict(list)
    for c in columns:
        by_category[c.declaration.category].append(c)
        by_table[(c.store, c.table)].append(c)

    categories = []
    for category in sorted(by_category):
        cols = by_category[category]
        decls = [c.declaration for c in cols]
        encrypted = {d.encrypted for d in decls}
        retention = sorted({d.retention for d in decls})
        categories.append(
            {
                "category": category,
                "personal": decls[0].personal,
                "purposes": sorted({str(d.purpose) for d in decls}),
                "lawful_bases": sorted({str(d.basis) for d in decls}),
                "retention": [
                    {"class": str(r), "period": period_of(r).describe()} for r in retention
                ],
                "encrypted": "all"
                if encrypted == {True}
                else "none"
                if encrypted == {False}
                else "some",
                "columns": [f"{c.table}.{c.column}" for c in cols],
                "stores": sorted({c.store for c in cols}),
                "recipients": [r.id for r in recipients_of(category)],
            }
        )

    tables = [
        {
            "table": table,
            "store": store,
            "columns": [
                {
                    "column": c.column,
                    "category": c.declaration.category,
                    "personal": c.declaration.personal,
                    "purpose": str(c.declaration.purpose),
                    "lawful_basis": str(c.declaration.basis),
                    "retention": str(c.declaration.retention),
                    "encrypted": c.declaration.encrypted,
                }
                for c in cols
            ],
        }
        for (store, table), cols in sorted(by_table.items())
    ]

    return {
        "title": "ConnectX record of processing activities",
        "version": __version__,
        "controller": CONTROLLER,
        "generated_from": "the data-inventory declarations of every persisted column "
        "(connectx.kit.inventory), the retention schedule (connectx.privacy.retention_schedule) "
        "and the recipient registry (connectx.privacy.processors)",
        "categories": categories,
        "retention_classes": [
            {
                "class": str(cls),
                "days": period.days,
                "after": period.after,
                "then": period.then,
                "why": period.why,
                "period": period.describe(),
                "bounds_days": [period.min_days, period.max_days] if period.adjustable else None,
                "workspace_may_set": period.workspace_override,
            }
            for cls, period in sorted((c, period_of(c)) for c in SCHEDULE)
        ],
        "recipients": [_recipient(r) for r in REGISTRY],
        "tables": tables,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict[str, Any]) -> str:
    c = doc["controller"]
    lines = [
        f"# {doc['title']}",
        "",
        f"Controller: {c['name']}, {c['address']}. {c['dpo']}. Generated from "
        f"{doc['generated_from']} (ConnectX {doc['version']}).",
        "",
        "## Processing by data category",
        "",
        "| category | personal | purposes | lawful bases | retention | encrypted | recipients "
        "| columns |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cat in doc["categories"]:
        retention = "; ".join(f"{r['class']} ({r['period']})" for r in cat["retention"])
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{cat['category']}`",
                    "yes" if cat["personal"] else "no",
                    ", ".join(cat["purposes"]),
                    ", ".join(cat["lawful_bases"]),
                    retention,
                    cat["encrypted"],
                    ", ".join(cat["recipients"]) or "none",
                    ", ".join(f"`{col}`" for col in cat["columns"]),
                )
            )
            + " |"
        )
    lines += ["", "## Retention classes", "", "| class | period | why |", "|---|---|---|"]
    for r in doc["retention_classes"]:
        lines.append(f"| `{r['class']}` | {_cell(r['period'])} | {_cell(r['why'])} |")
    lines += ["", "## Recipients and processors", ""]
    for r in doc["recipients"]:
        lines += [
            f"### {r['name']} (`{r['id']}`)",
            "",
            f"- role: {r['role']} ({r['kind']}); {r['service']}",
            f"- purposes: {', '.join(r['purposes'])}; lawful bases: {', '.join(r['lawful_bases'])}",
            f"- data categories: {', '.join(f'`{x}`' for x in r['categories'])}",
            f"- location: {r['location']}",
            f"- safeguards: {r['safeguards']}",
            f"- when: {r['when']}",
            "",
        ]
    lines += ["## Columns", ""]
    for t in doc["tables"]:
        lines += [
            f"### `{t['table']}` ({t['store']})",
            "",
            "| column | category | purpose | lawful basis | retention | encrypted |",
            "|---|---|---|---|---|---|",
        ]
        for col in t["columns"]:
            lines.append(
                f"| `{col['column']}` | `{col['category']}` | {col['purpose']} | "
                f"{col['lawful_basis']} | {col['retention']} | "
                f"{'yes' if col['encrypted'] else 'no'} |"
            )
        lines.append("")
    return "\n".join(lines)
