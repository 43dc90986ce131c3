"""Who is acting: a user signed in (web session or API token), the local operator, or the
workbench itself."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from services.identity.roles import ROLES, VIEWER

USER, LOCAL, SYSTEM = "user", "local", "system"


@dataclass(frozen=True)
class Principal:
    """The identity a service call acts for; the audit log records ``name``.

    ``kind`` is ``user`` for a database user (signed in or by token), ``local`` for in-process
    Python and the CLI without a token (the OS user; it could edit the database anyway, so it
    holds every role), ``system`` for the workbench's own monitor and scheduler.
    """

    name: str
    roles: frozenset[str]
    kind: str = USER
    via: str = ""  # "session", "token <id>", "cli", ... for the audit detail

    def has(self, role: str) -> bool:
        return role in self.roles

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)

    @property
    def is_user(self) -> bool:
        return self.kind == USER

    @classmethod
    def user(cls, name: str, roles: frozenset[str] | set[str], via: str = "") -> Principal:
        # Everybody who may sign in may read.
        return cls(name, frozenset(roles) | {VIEWER}, USER, via)

    @classmethod
    def local(cls) -> Principal:
        """The OS user running this Python process (a notebook, a test, the CLI without a token)."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            who = "unknown"
        return cls(f"local:{who}", frozenset(ROLES), LOCAL, "in-process")

    @classmethod
    def system(cls, component: str) -> Principal:
        """The workbench acting on its own (monitor, scheduler); never authorised for users' actions."""
        return cls(f"system:{component}", frozenset(), SYSTEM, component)
