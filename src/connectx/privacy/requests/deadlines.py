"""The clock of a request: due 30 days after receipt, one extension of up to 30 days.

30 days is the strictest of the laws ConnectX answers to (GDPR: one month; UAE PDPL: 30 days;
Saudi PDPL: 30 days), so it satisfies all of them. Pure functions: the service applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from connectx.kit.errors import Conflict, InvalidInput

ANSWER_WITHIN = timedelta(days=30)
MAX_EXTENSION_DAYS = 30
MIN_REASON = 10
REMINDERS = (("7d", timedelta(days=7)), ("1d", timedelta(days=1)))
# An unverified request lapses after this long (the person never proved who they are).
UNVERIFIED_LAPSE = timedelta(days=7)


def due_for(received_at: datetime) -> datetime:
    return received_at + ANSWER_WITHIN


@dataclass(frozen=True)
class Clock:
    """What a person deciding needs to see: when it is due, how long is left."""

    due_at: datetime
    days_left: int
    overdue: bool
    extended: bool

    @property
    def words(self) -> str:
        if self.overdue:
            late = -self.days_left
            return "overdue" if late <= 0 else f"overdue by {late} day{'s' if late != 1 else ''}"
        if self.days_left == 0:
            return "due today"
        return f"{self.days_left} day{'s' if self.days_left != 1 else ''} left"


def clock_of(due_at: datetime, now: datetime, extended: bool) -> Clock:
    return Clock(
        due_at=due_at,
        days_left=int((due_at - now).total_seconds() // 86400),
        overdue=now > due_at,
        extended=extended,
    )


def check_extension(
    *, due_at: datetime, now: datetime, already: bool, days: int, reason: str
) -> None:
    """Refuse an extension the rules do not allow, saying which rule."""
    if already:
        raise Conflict("This request was extended already; the law allows one extension.")
    if now >= due_at:
        raise Conflict(
            "The due date has passed: an extension must be made before the request is due."
        )
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(
            f"An extension is 1 to {MAX_EXTENSION_DAYS} days, not {days}.", field="days"
        )
    if len(reason.strip()) < MIN_REASON:
        raise InvalidInput(
            "Give the reason for the extension (at least a short sentence): the person is told it.",
            field="reason",
        )
