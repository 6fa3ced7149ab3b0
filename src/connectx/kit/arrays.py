"""Rows as column arrays, for PostgreSQL statements that take a batch's rows as ``unnest`` of
array parameters (one statement execution instead of one per row)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def columns(rows: Sequence[Mapping[str, Any]], params: Mapping[str, str]) -> dict[str, list[Any]]:
    """``{parameter: [row[key] for row in rows]}`` for each ``parameter: key`` of ``params``."""
    return {param: [row[key] for row in rows] for param, key in params.items()}
