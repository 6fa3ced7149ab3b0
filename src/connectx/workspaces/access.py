"""Who may do what in a workspace: roles for people, scopes for API keys.

Roles: ``owner`` > ``admin`` > ``agent`` / ``analyst``. Owners and admins manage the workspace
(profile, members, invitations, API keys); only owners grant, change or remove the owner role.

Scopes of API keys: ``read`` (look), ``write`` (change business data), ``admin`` (manage the
workspace as an admin would). ``admin`` implies ``write``, which implies ``read``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends

from connectx.accounts.principal import Principal, require_workspace
from connectx.kit.errors import Forbidden

ROLES = ("owner", "admin", "agent", "analyst")
MANAGERS = ("owner", "admin")
SCOPES = ("read", "write", "admin")
_IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}


def has_scope(principal: Principal, needed: str) -> bool:
    return any(needed in _IMPLIED.get(scope, set()) for scope in principal.scopes)


def effective_role(principal: Principal) -> str | None:
    """The role a caller acts with: a person's membership role; an ``admin`` key acts as admin."""
    if principal.api_key_id is not None:
        return "admin" if has_scope(principal, "admin") else None
    return principal.role


def is_manager(principal: Principal) -> bool:
    return effective_role(principal) in MANAGERS


def check(principal: Principal, scope: str, roles: tuple[str, ...] = ()) -> None:
    """Raise Forbidden unless the caller holds ``scope`` (API key) or one of ``roles`` (person)."""
    if principal.api_key_id is not None:
        if not has_scope(principal, scope):
            raise Forbidden(
                f"This API key lacks the '{scope}' scope needed here; "
                "an owner or admin can create a key that has it."
            )
        return
    if roles and principal.role not in roles:
        raise Forbidden(
            f"Only a workspace {' or '.join(roles)} can do this; "
            f"your role here is {principal.role or 'none'}."
        )


def allow(scope: str, *roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: a caller in a workspace holding ``scope`` (keys) or one of ``roles`` (people).

    Without ``roles`` any member passes (keys still need ``scope``).
    """

    async def dependency(principal: Principal = Depends(require_workspace)) -> Principal:
        check(principal, scope, roles)
        return principal

    return dependency
