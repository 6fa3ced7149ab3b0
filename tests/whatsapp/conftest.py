from __future__ import annotations

from typing import Any

import pytest

from tests.whatsapp.support import connect
from tests.workspaces.helpers import Caller, owner_of


@pytest.fixture
async def owner(app: Any) -> Caller:
    caller, _ = await owner_of(app)
    yield caller
    await caller.client.aclose()


@pytest.fixture
async def channel(owner: Caller) -> dict[str, Any]:
    """Number A connected to the owner's workspace."""
    return await connect(owner)
