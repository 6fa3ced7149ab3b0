"""Carrying out data-subject rights (policy §8): one executor per right, driven by the data
inventory. See docs/privacy-rights.md."""

from connectx.privacy.rights.base import Kept, Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.execute import EXECUTORS, execute
from connectx.privacy.rights.recipients import who_receives

__all__ = [
    "EXECUTORS",
    "Context",
    "Kept",
    "Outcome",
    "Result",
    "Right",
    "Subject",
    "execute",
    "who_receives",
]
