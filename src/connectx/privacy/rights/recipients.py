"""Recipients (GDPR art. 19): who receives a subject's data, from the registry
(:mod:`connectx.privacy.processors`) joined to the categories the subject's records hold."""

from __future__ import annotations

from dataclasses import dataclass

from connectx.privacy.processors import REGISTRY, Recipient
from connectx.privacy.rights.base import Subject
from connectx.privacy.rights.records import tables_for


@dataclass(frozen=True)
class Listed:
    id: str
    name: str
    role: str
    service: str
    location: str
    safeguards: str
    when: str
    categories: tuple[str, ...]  # the subject's data categories this recipient receives


def categories_of(subject: Subject) -> set[str]:
    """The personal-data categories a subject of this kind can have records in."""
    out = set()
    for found in tables_for(subject):
        if not found.about:
            continue
        for decl in found.declarations().values():
            if decl.personal:
                out.add(decl.category)
    return out


def who_receives(subject: Subject, recipients: tuple[Recipient, ...] = REGISTRY) -> list[Listed]:
    """Every recipient of the subject's kinds of data, and which of them each receives (what the
    subject is told when they ask who the recipients are)."""
    categories = categories_of(subject)
    out = []
    for r in recipients:
        if subject.kind not in r.subjects:
            continue
        received = tuple(sorted(c for c in categories if r.receives(c)))
        if received:
            out.append(
                Listed(
                    r.id,
                    r.name,
                    str(r.role),
                    r.service,
                    r.location,
                    r.safeguards,
                    r.when,
                    received,
                )
            )
    return out
