"""The platform beside the real simulator (``world``), for keyword and send-gate tests."""

from tests.outbound.conftest import world

__all__ = ["world"]
