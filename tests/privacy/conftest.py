"""The platform beside the real simulator (``world``), for keyword and send-gate tests; two
businesses and their customers (``rights_world``), for the data-subject rights tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectx.config import get_settings
from tests.outbound.conftest import world
from tests.privacy import rights_world as businesses

__all__ = ["rights_world", "world"]


@pytest.fixture
async def rights_world(app: Any) -> AsyncIterator[businesses.World]:
    """tests/privacy/rights_world.py; the files it leaves in the media store and the exports
    folder go with the test."""
    built = await businesses.build(app)
    yield built
    await built.owner_a.client.aclose()
    await built.owner_b.client.aclose()
    for folder in ("media", "exports"):
        shutil.rmtree(get_settings().data_dir / folder, ignore_errors=True)
