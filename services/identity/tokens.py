"""Personal API tokens: random secrets shown once, stored as SHA-256, revocable, expiring.

A token is 32 random bytes, so a fast hash is enough (nobody can guess a preimage), and checking
one costs a single indexed lookup: the API's authorisation budget is 2 ms per call.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.audit import AuditLog
from services.db import ApiTokenRow, Database, UserRow
from services.errors import AuthenticationError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.identity.users import principal_of

PREFIX = "nwb_"
MAX_EXPIRY_DAYS = 3650
# last_used_at is a hint for people, not a log: write it at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    username: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"

    def to_json(self) -> dict:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {"token_id": self.token_id, "username": self.username, "name": self.name,
                "state": self.state, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at),
                "last_used_at": iso(self.last_used_at)}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _info(row: ApiTokenRow, username: str) -> TokenInfo:
    return TokenInfo(row.id, username, row.name, _aware(row.created_at), _aware(row.expires_at),
                     _aware(row.revoked_at), _aware(row.last_used_at))


class TokenService:
    """Create, list, revoke and check API tokens."""

    def __init__(self, database: Database, audit: AuditLog, authorizer: Authorizer) -> None:
        self._db = database
        self._audit = audit
        self._auth = authorizer

    def create(self, name: str, *, expires_days: float | None = None, username: str | None = None,
               principal: Principal | None = None) -> tuple[TokenInfo, str]:
        """A new token for ``username`` (default: the acting user); returns it and its secret,
        which is shown this once and never stored."""
        acting = self._auth.resolve(principal)
        owner = username or (acting.name if acting.is_user else None)
        if owner is None:
            raise ValidationError("Name the user the token is for (tokens create --user NAME): "
                                  f"{acting.name} is not a workbench user.")
        action = "tokens.create" if acting.is_user and owner == acting.name else "users.manage"
        acting = self._auth.require(principal, action, f"token for {owner}")
        label = (name or "").strip()
        if not 1 <= len(label) <= 64:
            raise ValidationError(f"A token needs a name of 1-64 characters, was {name!r}.")
        expires = None
        if expires_days is not None:
            if not (0 < expires_days <= MAX_EXPIRY_DAYS):
                raise ValidationError(f"--expires-days must be between 0 and {MAX_EXPIRY_DAYS}, "
                                      f"was {expires_days}.")
            expires = datetime.now(UTC) + timedelta(days=expires_days)
        token_id = secrets.token_hex(6)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._db.session() as session:
            user = session.scalar(select(UserRow).where(UserRow.username == owner))
            if user is None:
                raise ValidationError(f"There is no user {owner!r}.")
            row = ApiTokenRow(id=token_id, user_id=user.id, name=label, secret_hash=_hash(secret),
                              created_at=datetime.now(UTC), expires_at=expires)
            session.add(row)
            session.add(self._audit.row(acting, "tokens.create", f"token {token_id} of {owner}",
                                        "ok", f"name {label!r}" + (f", expires {expires:%Y-%m-%d}"
                                                                    if expires else "")))
            session.flush()
            return _info(row, owner), secret

    def list(self, *, all_users: bool = False, principal: Principal | None = None) -> list[TokenInfo]:
        """The acting user's tokens; every user's with ``all_users`` (admins)."""
        acting = self._auth.resolve(principal)
        if all_users or not acting.is_user:
            acting = self._auth.require(principal, "users.manage", "tokens")
        query = select(ApiTokenRow, UserRow.username).join(UserRow)
        if not (all_users or not acting.is_user):
            query = query.where(UserRow.username == acting.name)
        with self._db.session() as session:
            return [_info(t, u) for t, u in session.execute(
                query.order_by(ApiTokenRow.created_at.desc()))]

    def revoke(self, token_id: str, *, principal: Principal | None = None) -> TokenInfo:
        with self._db.session() as session:
            found = session.execute(select(ApiTokenRow, UserRow.username).join(UserRow)
                                    .where(ApiTokenRow.id == token_id)).first()
        if found is None:
            raise ValidationError(f"There is no token {token_id!r}; list them with "
                                  "'nautilus-workbench tokens list'.")
        row, owner = found
        acting = self._auth.require(principal, "tokens.revoke", f"token {token_id} of {owner}",
                                    owner=owner)
        with self._db.session() as session:
            row = session.get(ApiTokenRow, token_id)
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            session.add(self._audit.row(acting, "tokens.revoke", f"token {token_id} of {owner}",
                                        "ok"))
            return _info(row, owner)

    def authenticate(self, secret: str) -> Principal:
        """The principal of a valid token, or AuthenticationError saying what is wrong with it."""
        if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
            raise AuthenticationError("The token is not a workbench API token.")
        now = datetime.now(UTC)
        with self._db.session() as session:
            found = session.execute(select(ApiTokenRow, UserRow).join(UserRow)
                                    .where(ApiTokenRow.secret_hash == _hash(secret))).first()
            if found is None:
                raise AuthenticationError("The token is not valid.")
            token, user = found
            if token.revoked_at is not None:
                raise AuthenticationError(f"Token {token.id} was revoked.")
            if token.expires_at is not None and _aware(token.expires_at) <= now:
                raise AuthenticationError(f"Token {token.id} expired on "
                                          f"{_aware(token.expires_at):%Y-%m-%d %H:%M} UTC.")
            if user.disabled:
                raise AuthenticationError(f"The user {user.username} of token {token.id} is "
                                          "disabled.")
            last = _aware(token.last_used_at)
            if last is None or now - last >= LAST_USED_RESOLUTION:
                token.last_used_at = now
            return principal_of(user, f"token {token.id}")
