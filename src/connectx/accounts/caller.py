"""Who is calling, as the services see it: a user, an API key or the system (``actor``).

Apart from the FastAPI dependencies that find it (:mod:`connectx.accounts.principal`), so that
what services import does not pull in the web framework: the webhook processing process runs
services (and makes system principals) but serves no request (session 28: ~8 MB less there).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Principal:
    actor: str  # "user:12" or "api_key:3": what audit events record
    user_id: int | None = None
    workspace_id: int | None = None
    role: str | None = None  # role in workspace_id (sessions)
    scopes: list[str] = field(default_factory=list)  # API keys
    session_id: int | None = None
    api_key_id: int | None = None
    csrf_token: str | None = None
    ip: str | None = None

    @property
    def via_cookie(self) -> bool:
        return self.session_id is not None
