"""Purpose limitation (policy §4): message content is never available to marketing or analytics.

Every path that reads personal data in bulk for another use than running the conversation (an
export, an audience, a report, a marketing decision) declares **what for** (:class:`Use`) and
**which columns** it reads, in :data:`EXPORTS`. The boundary is held three ways:

1. :func:`columns` is how such a path names what it reads: a column whose inventory category is
   forbidden for the use (``user.content.*`` for marketing and analytics) is refused
   (:class:`PurposeViolation`, a programming error) before any query runs.
2. :func:`acting_for` marks the code that runs for a use; while it runs, the vault refuses to
   open any value whose column is content, or whose column it does not know (fail closed).
   Message bodies, captions, raw webhooks, media and notes are only stored sealed, so without
   the vault there is nothing to read.
3. ``tests/privacy/test_purpose.py`` checks every registered path against the rule, and that
   every download the application serves as a file is registered.

Decision (docs/privacy-inventory.md): counts and timestamps of messages are metadata, not content
(policy §4 lists them apart), so analytics may count messages; it may never read what they say.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from connectx.kit.inventory import Declaration, declaration_of


class Use(StrEnum):
    SERVICE = "service"  # running the conversation itself (inbox, sending, intake)
    RIGHTS = "rights"  # a data subject's own data, for them (access, portability)
    LEGAL = "legal"  # proof and accountability (audit log, record of processing)
    MARKETING = "marketing"  # audiences, marketing decisions and sends
    ANALYTICS = "analytics"  # reports, statistics, exports for analysis


# Categories a use may never read (prefixes of the inventory's hierarchical categories).
FORBIDDEN: dict[Use, tuple[str, ...]] = {
    Use.MARKETING: ("user.content.",),
    Use.ANALYTICS: ("user.content.",),
}


class PurposeViolation(RuntimeError):
    """A path tried to read data its declared use may not read (a programming error)."""


def allows(use: Use, declaration: Declaration | None) -> bool:
    """May ``use`` read a column with this declaration? Unknown columns: only unrestricted uses."""
    forbidden = FORBIDDEN.get(use, ())
    if not forbidden:
        return True
    if declaration is None:
        return False
    return not declaration.category.startswith(forbidden)


def _name(col: Any) -> str:
    return f"{col.table.name}.{col.name}"


def columns(use: Use, *cols: Any) -> tuple[Any, ...]:
    """The columns a path of ``use`` reads (model attributes or table columns), checked."""
    for col in cols:
        column = getattr(col, "expression", col)  # InstrumentedAttribute -> Column
        if not allows(use, declaration_of(column)):
            raise PurposeViolation(f"{_name(column)} may not be read for {use.value}")
    return cols


@dataclass(frozen=True)
class Export:
    """A registered read path: what it is for and what it reads ("table.column" names, or
    "table.*" for every column of a table about the subject, for :attr:`Use.RIGHTS`)."""

    name: str
    use: Use
    reads: tuple[str, ...]
    where: str  # the module that serves it


EXPORTS: dict[str, Export] = {}


def register(name: str, use: Use, reads: Sequence[Any], where: str) -> Export:
    """Declare a read path (at import time of its module). Checked like :func:`columns`."""
    names = tuple(c if isinstance(c, str) else _name(getattr(c, "expression", c)) for c in reads)
    for n in names:
        if not allows(use, category_of(n)):
            raise PurposeViolation(f"{n} may not be read for {use.value} ({name})")
    export = Export(name, use, names, where)
    EXPORTS[name] = export
    return export


@cache
def _declarations() -> dict[str, Declaration]:
    import connectx.models  # noqa: F401  (registers every table)
    from connectx.db.base import Base

    out: dict[str, Declaration] = {}
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            decl = declaration_of(col)
            if decl is not None:
                out[f"{table.name}.{col.name}"] = decl
    return out


def category_of(column: str) -> Declaration | None:
    """The declaration of "table.column" (the vault's column labels: "messages.body" names the
    sealed ``messages.body_enc``; a ``#`` suffix names how the value was packed,
    "webhook_events.body#lz4"); ``None`` when no column of that name is declared."""
    found = _declarations()
    column = column.partition("#")[0]
    if column.endswith(".*"):
        return None
    return found.get(column) or found.get(f"{column}_enc")


_current: ContextVar[Use | None] = ContextVar("connectx_purpose", default=None)


@contextmanager
def acting_for(use: Use) -> Iterator[None]:
    """Run the block for ``use``: the vault refuses to open what ``use`` may not read."""
    token = _current.set(use)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Use | None:
    return _current.get()


def check_open(column: str) -> None:
    """Called by the vault before it opens a value of ``column`` ("messages.body")."""
    use = _current.get()
    if use is None or use not in FORBIDDEN:
        return
    if not allows(use, category_of(column)):
        raise PurposeViolation(f"{column} may not be opened for {use.value}")
