"""Signed-in browsers: a random session secret in an HTTP-only cookie, its SHA-256 in the
``user_sessions`` table, an idle timeout and an absolute lifetime."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.audit import AuditLog
from services.db import Database, UserRow, UserSessionRow
from services.errors import AuthenticationError
from services.identity.principal import Principal
from services.identity.users import principal_of

IDLE_TIMEOUT = timedelta(hours=8)
LIFETIME = timedelta(hours=24)
# last_seen_at is refreshed at most this often (every page load and websocket would write).
SEEN_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class SessionService:
    """Start, check and end web sessions."""

    def __init__(self, database: Database, audit: AuditLog, idle_timeout: timedelta = IDLE_TIMEOUT,
                 lifetime: timedelta = LIFETIME) -> None:
        self._db = database
        self._audit = audit
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime

    def start(self, principal: Principal, user_agent: str = "", address: str = "") -> str:
        """A new session for a user who just signed in; returns the secret for the cookie."""
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._db.session() as session:
            user = session.scalar(select(UserRow).where(UserRow.username == principal.name))
            if user is None:
                raise AuthenticationError(f"{principal.name} is not a workbench user.")
            session.add(UserSessionRow(user_id=user.id, secret_hash=_hash(secret), created_at=now,
                                       last_seen_at=now, expires_at=now + self.lifetime,
                                       user_agent=(user_agent or "")[:256],
                                       address=(address or "")[:64]))
        return secret

    def resolve(self, secret: str) -> Principal:
        """The signed-in user of a session secret, or AuthenticationError (expired, ended,
        unknown, user disabled)."""
        now = datetime.now(UTC)
        with self._db.session() as session:
            found = session.execute(select(UserSessionRow, UserRow).join(UserRow).where(
                UserSessionRow.secret_hash == _hash(secret or ""))).first()
            if found is None:
                raise AuthenticationError("Not signed in.")
            row, user = found
            if row.ended_at is not None:
                raise AuthenticationError("You signed out; sign in again.")
            if _aware(row.expires_at) <= now or now - _aware(row.last_seen_at) > self.idle_timeout:
                raise AuthenticationError("Your session expired; sign in again.")
            if user.disabled:
                raise AuthenticationError(f"The user {user.username} is disabled.")
            if now - _aware(row.last_seen_at) >= SEEN_RESOLUTION:
                row.last_seen_at = now
            return principal_of(user, "session")

    def end(self, secret: str) -> None:
        """Sign out: the session stops working at once."""
        with self._db.session() as session:
            found = session.execute(select(UserSessionRow, UserRow.username).join(UserRow).where(
                UserSessionRow.secret_hash == _hash(secret or ""),
                UserSessionRow.ended_at.is_(None))).first()
            if found is None:
                return
            row, username = found
            row.ended_at = datetime.now(UTC)
            session.add(self._audit.row(username, "users.sign_out", f"user {username}", "ok"))
