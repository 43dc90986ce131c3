"""The one authorisation check every mutating service method passes through."""

from __future__ import annotations

from services.audit import AuditLog
from services.errors import AuthenticationError, PermissionDenied
from services.identity.principal import Principal
from services.identity.roles import PERMISSIONS


class Authorizer:
    """Checks an action against the role matrix and audits every refusal.

    ``default`` acts for calls that pass no principal: the local OS user in notebooks, tests and
    the CLI; ``None`` in the server, where every call must name its signed-in user.
    """

    def __init__(self, audit: AuditLog | None, default: Principal | None) -> None:
        self.audit = audit
        self.default = default

    def resolve(self, principal: Principal | None) -> Principal:
        """The principal a call acts for, or AuthenticationError when there is none."""
        acting = principal or self.default
        if acting is None:
            raise AuthenticationError("Sign in first: this action needs a signed-in user.")
        return acting

    def allows(self, principal: Principal | None, action: str, *, live: bool = False,
               owner: str | None = None) -> tuple[bool, str]:
        """Whether ``principal`` may do ``action``, and the reason when not (for disabled
        buttons); no audit entry."""
        acting = principal or self.default
        return check(acting, action, live=live, owner=owner)

    def require(self, principal: Principal | None, action: str, target: str, *,
                live: bool = False, owner: str | None = None, state: str | None = None) -> Principal:
        """Return the acting principal, or audit the refusal and raise PermissionDenied."""
        acting = principal or self.default
        allowed, reason = check(acting, action, live=live, owner=owner)
        if not allowed and self.audit is not None:
            self.audit.record(acting.name if acting else "anonymous", action, target, "refused",
                              reason, from_state=state, to_state=state)
        if not allowed:
            if acting is None:
                raise AuthenticationError(reason)
            raise PermissionDenied(reason)
        return acting


def check(principal: Principal | None, action: str, *, live: bool = False,
          owner: str | None = None) -> tuple[bool, str]:
    """(allowed, reason) for ``principal`` doing ``action``: the role matrix, nothing else."""
    permission = PERMISSIONS[action]  # an unknown action is a programming error
    if principal is None:
        return False, "Sign in first: this action needs a signed-in user."
    other = owner is not None and owner != principal.name
    needed = permission.needed(live=live, other_owner=other)
    if principal.has_any(needed):
        return True, ""
    roles = " or ".join(sorted(needed))
    whose = " of another user" if other and permission.others_roles is not None else ""
    scope = " live" if live and permission.live_roles is not None else ""
    return False, (f"{principal.name} may not {permission.description}{scope}{whose}: "
                   f"the {roles} role is needed.")
