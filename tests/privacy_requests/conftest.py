"""The platform and `connectx simulator` on loopback, as the outbound tests start them."""

from tests.outbound.conftest import world  # noqa: F401
