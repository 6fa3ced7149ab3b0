"""The inbox tests use the WhatsApp tests' owner and connected number, and the outbound tests'
platform + simulator pair over real HTTP."""

from tests.outbound.conftest import world  # noqa: F401
from tests.whatsapp.conftest import channel, owner  # noqa: F401
