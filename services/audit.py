"""The audit log: every state-changing action and every refusal, with the real actor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from services.db import AuditEntry, Database
from services.identity.principal import Principal

MAX_DETAIL = 2000


@dataclass(frozen=True)
class AuditRecord:
    """One entry as readers see it."""

    id: int
    ts: datetime
    actor: str
    action: str
    target: str
    from_state: str | None
    to_state: str | None
    outcome: str
    detail: str | None


class AuditLog:
    """Writes and reads ``audit_log`` rows."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @staticmethod
    def row(actor: Principal | str, action: str, target: str, outcome: str,
            detail: str | None = None, from_state: str | None = None,
            to_state: str | None = None) -> AuditEntry:
        """An entry to add to a session the caller commits together with its change."""
        name = actor.name if isinstance(actor, Principal) else actor
        return AuditEntry(ts=datetime.now(UTC), actor=name[:128], action=action[:64],
                          target=str(target)[:256], from_state=from_state, to_state=to_state,
                          outcome=outcome[:32],
                          detail=None if detail is None else str(detail)[:MAX_DETAIL])

    def record(self, actor: Principal | str, action: str, target: str, outcome: str,
               detail: str | None = None, from_state: str | None = None,
               to_state: str | None = None) -> None:
        """Write one entry in its own transaction."""
        with self._db.session() as session:
            session.add(self.row(actor, action, target, outcome, detail, from_state, to_state))

    def entries(self, action_prefix: str | None = None, target: str | None = None,
                actor: str | None = None, limit: int = 200) -> list[AuditRecord]:
        """Newest first, optionally only actions starting with ``action_prefix``."""
        query = select(AuditEntry)
        if action_prefix:
            query = query.where(AuditEntry.action.startswith(action_prefix, autoescape=True))
        if target:
            query = query.where(AuditEntry.target.contains(target, autoescape=True))
        if actor:
            query = query.where(AuditEntry.actor == actor)
        with self._db.session() as session:
            rows = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)).all()
            return [AuditRecord(r.id, r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC),
                                r.actor, r.action, r.target, r.from_state, r.to_state,
                                r.outcome, r.detail) for r in rows]
