"""The privacy policy, read from ``content/privacy-policy.txt`` and given structure for its page.

The text file is the single source: numbered lines ("3. How We Use…") are sections, "2.1 …"
lines are subsections, "- " lines are list items ("Label: text" gets its label in bold), a
paragraph ending in ":" that is followed by short lines without a leading "- " introduces a
postal address, and every other line is a paragraph. Editing the policy means editing that file;
the "Last Updated" line gives the date shown on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

POLICY_FILE = Path(__file__).resolve().parent / "content" / "privacy-policy.txt"

_SECTION = re.compile(r"^(\d+)\.\s+(\S.*)$")
_SUBSECTION = re.compile(r"^(\d+\.\d+)\s+(\S.*)$")
_UPDATED = re.compile(r"^Last Updated:\s*(.+)$", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LABEL_MAX_WORDS = 6
_ADDRESS_LINE_MAX = 60


class PolicyFormatError(ValueError):
    """The policy text does not have the shape the page needs."""


@dataclass(frozen=True)
class Item:
    """One list item; ``label`` is the bold lead-in before a colon (may be empty)."""

    label: str
    text: str


@dataclass
class Block:
    """A paragraph (``text``), a list (``items``) or a postal address (``lines``)."""

    kind: str  # "paragraph" | "list" | "address"
    text: str = ""
    items: list[Item] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class Section:
    number: str  # "2" or "2.1"
    title: str
    level: int  # 2 for sections, 3 for subsections
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "section-" + self.number.replace(".", "-")


@dataclass(frozen=True)
class Contact:
    """How to reach the Data Protection Officer (the policy's contact section)."""

    email: str | None
    address: tuple[str, ...]


@dataclass
class Policy:
    title: str
    last_updated: date
    last_updated_text: str
    preamble: list[Block]
    sections: list[Section]

    @property
    def toc(self) -> list[Section]:
        return [s for s in self.sections if s.level == 2]

    @property
    def contact(self) -> Contact:
        """The DPO's email and postal address, taken from the last section that names them."""
        for section in reversed(self.sections):
            address = next((b.lines for b in section.blocks if b.kind == "address"), [])
            emails = [m for b in section.blocks for m in _EMAIL.findall(b.text)]
            if address or emails:
                return Contact(email=emails[0] if emails else None, address=tuple(address))
        return Contact(email=None, address=())


def _item(line: str) -> Item:
    text = line[2:].strip()
    label, sep, rest = text.partition(":")
    if sep and rest.strip() and len(label.split()) <= _LABEL_MAX_WORDS:
        return Item(label=label.strip(), text=rest.strip())
    return Item(label="", text=text)


def _is_address_line(line: str) -> bool:
    return (
        not line.startswith("- ")
        and len(line) <= _ADDRESS_LINE_MAX
        and not line.endswith((".", ":"))
        and not _SECTION.match(line)
        and not _SUBSECTION.match(line)
    )


def parse(text: str) -> Policy:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        raise PolicyFormatError("the policy needs a title, a 'Last Updated' line and a body")
    title = lines[0]
    updated = _UPDATED.match(lines[1])
    if not updated:
        raise PolicyFormatError("the second line of the policy must be 'Last Updated: <date>'")
    updated_text = updated.group(1).strip()
    try:
        last_updated = datetime.strptime(updated_text, "%B %d, %Y").date()
    except ValueError as exc:
        raise PolicyFormatError(
            f"'Last Updated' must read like 'August 2, 2025', not {updated_text!r}"
        ) from exc

    preamble: list[Block] = []
    sections: list[Section] = []
    blocks = preamble
    in_address = False
    for line in lines[2:]:
        sub = _SUBSECTION.match(line)
        sec = None if sub else _SECTION.match(line)
        if sub or sec:
            match = sub or sec
            assert match is not None
            section = Section(number=match.group(1), title=match.group(2), level=3 if sub else 2)
            sections.append(section)
            blocks = section.blocks
            in_address = False
            continue
        if line.startswith("- "):
            in_address = False
            if blocks and blocks[-1].kind == "list":
                blocks[-1].items.append(_item(line))
            else:
                blocks.append(Block(kind="list", items=[_item(line)]))
            continue
        previous = blocks[-1] if blocks else None
        if in_address and previous is not None and _is_address_line(line):
            previous.lines.append(line)
            continue
        if (
            previous is not None
            and previous.kind == "paragraph"
            and previous.text.endswith(":")
            and _is_address_line(line)
        ):
            blocks.append(Block(kind="address", lines=[line]))
            in_address = True
            continue
        in_address = False
        blocks.append(Block(kind="paragraph", text=line))
    if not sections:
        raise PolicyFormatError("the policy has no numbered sections")
    return Policy(
        title=title,
        last_updated=last_updated,
        last_updated_text=updated_text,
        preamble=preamble,
        sections=sections,
    )


@cache
def privacy_policy() -> Policy:
    """The product's privacy policy (parsed once per process)."""
    return parse(POLICY_FILE.read_text(encoding="utf-8"))
