from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.simulator.support import Sim, running


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """The simulator with its defaults (demo app, number, customers and templates)."""
    async with running() as s:
        yield s
