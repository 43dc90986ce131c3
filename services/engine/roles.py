"""Who may do what with engines. Checked in the service layer, whatever the caller.

Until logins exist, the local operator ("local") has every role. WORKBENCH_ROLES assigns roles to
other actors, e.g. "alice=trader,viewer;bob=viewer"; an actor not listed may only view.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.errors import ConfigurationError

VIEWER, TRADER, LIVE_TRADER = "viewer", "trader", "live_trader"
ROLES = (VIEWER, TRADER, LIVE_TRADER)
LOCAL_OPERATOR = "local"


@dataclass(frozen=True)
class Roles:
    assignments: dict[str, frozenset[str]]

    @classmethod
    def from_environment(cls) -> Roles:
        return cls.parse(os.environ.get("WORKBENCH_ROLES", ""))

    @classmethod
    def parse(cls, text: str) -> Roles:
        assignments = {LOCAL_OPERATOR: frozenset(ROLES)}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            actor, sep, roles = part.partition("=")
            names = frozenset(r.strip() for r in roles.split(",") if r.strip())
            unknown = names - set(ROLES)
            if not sep or not actor.strip() or unknown:
                raise ConfigurationError(
                    f"WORKBENCH_ROLES: cannot read {part!r}; write actor=role,role;... with roles "
                    f"from {', '.join(ROLES)}")
            assignments[actor.strip()] = names | {VIEWER}
        return cls(assignments)

    def has(self, actor: str, role: str) -> bool:
        return role in self.assignments.get(actor, frozenset({VIEWER}))
