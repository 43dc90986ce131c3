"""Users: create, list, disable, change roles and passwords, and sign in with a password."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from services.audit import AuditLog
from services.db import Database, UserRow
from services.errors import AuthenticationError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from services.identity.principal import Principal
from services.identity.roles import ADMIN, APPROVER, RESEARCHER, ROLES, TRADER, VIEWER

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
FIRST_ADMIN = "admin"
# The first account can do everything a single-person installation needs; live trading and a
# second approver stay deliberate steps.
FIRST_ADMIN_ROLES = frozenset({ADMIN, RESEARCHER, TRADER, APPROVER, VIEWER})
FREE_ATTEMPTS = 5  # failed sign-ins before the back-off starts
BACKOFF_START_S = 30
BACKOFF_MAX_S = 15 * 60
SIGN_IN_FAILED = "Wrong username or password."


@dataclass(frozen=True)
class UserInfo:
    username: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    created_by: str
    last_login_at: datetime | None

    def to_json(self) -> dict:
        return {"username": self.username, "roles": list(self.roles), "disabled": self.disabled,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None}


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def parse_roles(roles) -> frozenset[str]:
    """Validated role names; ValidationError naming the unknown ones."""
    names = frozenset(r.strip() for r in roles if r and r.strip())
    unknown = sorted(names - set(ROLES))
    if unknown:
        raise ValidationError(f"Unknown role {', '.join(map(repr, unknown))}; the roles are "
                              f"{', '.join(ROLES)}.")
    if not names:
        raise ValidationError(f"Give at least one role ({', '.join(ROLES)}).")
    return names | {VIEWER}


def _info(row: UserRow) -> UserInfo:
    roles = tuple(r for r in ROLES if r in row.roles.split(","))
    return UserInfo(row.username, roles, bool(row.disabled), _aware(row.created_at),
                    row.created_by, _aware(row.last_login_at))


def principal_of(row: UserRow, via: str) -> Principal:
    return Principal.user(row.username, frozenset(row.roles.split(",")), via)


class UserService:
    """Accounts in the ``users`` table; every change is authorised and audited."""

    def __init__(self, database: Database, audit: AuditLog, authorizer: Authorizer) -> None:
        self._db = database
        self._audit = audit
        self._auth = authorizer

    # -- reading --------------------------------------------------------------------------
    def list(self) -> list[UserInfo]:
        with self._db.session() as session:
            return [_info(r) for r in session.scalars(select(UserRow).order_by(UserRow.username))]

    def get(self, username: str) -> UserInfo:
        with self._db.session() as session:
            return _info(self._row(session, username))

    def count(self) -> int:
        with self._db.session() as session:
            return session.scalar(select(func.count()).select_from(UserRow)) or 0

    # -- changes --------------------------------------------------------------------------
    def add(self, username: str, roles, password: str | None = None, *,
            principal: Principal | None = None) -> tuple[UserInfo, str | None]:
        """Create a user; without ``password`` a random one is made and returned (once)."""
        acting = self._auth.require(principal, "users.manage", f"user {username}")
        names = parse_roles(roles)
        if not USERNAME.match(username or ""):
            raise ValidationError(f"Username {username!r} is not valid: 2-32 characters, lower-case "
                                  "letters, digits, '.', '_' or '-', starting with a letter.")
        generated = None
        if password is None:
            password = generated = secrets.token_urlsafe(15)
        problem = password_problem(password)
        if problem:
            raise ValidationError(f"Cannot use that password: {problem}.")
        with self._db.session() as session:
            if session.scalar(select(UserRow).where(UserRow.username == username)) is not None:
                raise ValidationError(f"A user named {username!r} exists already.")
            row = UserRow(username=username, password_hash=hash_password(password),
                          roles=",".join(sorted(names)), disabled=False, created_at=_now(),
                          created_by=acting.name, failed_logins=0)
            session.add(row)
            session.add(self._audit.row(acting, "users.add", f"user {username}", "ok",
                                        f"roles {', '.join(sorted(names))}"))
            session.flush()
            return _info(row), generated

    def set_roles(self, username: str, roles, *, principal: Principal | None = None) -> UserInfo:
        acting = self._auth.require(principal, "users.manage", f"user {username}")
        names = parse_roles(roles)
        with self._db.session() as session:
            row = self._row(session, username)
            if ADMIN in row.roles.split(",") and ADMIN not in names:
                self._keep_an_admin(session, username)
            row.roles = ",".join(sorted(names))
            session.add(self._audit.row(acting, "users.roles", f"user {username}", "ok",
                                        f"roles {', '.join(sorted(names))}"))
            return _info(row)

    def set_disabled(self, username: str, disabled: bool = True, *,
                     principal: Principal | None = None) -> UserInfo:
        """Disable (or enable) a user; a disabled user's sessions and tokens stop working."""
        acting = self._auth.require(principal, "users.manage", f"user {username}")
        with self._db.session() as session:
            row = self._row(session, username)
            if disabled and ADMIN in row.roles.split(","):
                self._keep_an_admin(session, username)
            row.disabled = disabled
            session.add(self._audit.row(acting, "users.disable" if disabled else "users.enable",
                                        f"user {username}", "ok"))
            return _info(row)

    def set_password(self, username: str, password: str, *,
                     principal: Principal | None = None) -> None:
        """Change a password: one's own, or anybody's as an admin."""
        acting = self._auth.resolve(principal)
        if not (acting.is_user and acting.name == username):
            acting = self._auth.require(principal, "users.manage", f"user {username}")
        problem = password_problem(password)
        if problem:
            raise ValidationError(f"Cannot use that password: {problem}.")
        with self._db.session() as session:
            row = self._row(session, username)
            row.password_hash = hash_password(password)
            row.failed_logins, row.locked_until = 0, None
            session.add(self._audit.row(acting, "users.password", f"user {username}", "ok"))

    def ensure_first_admin(self, password_file: str | Path | None = None) -> str | None:
        """Create the ``admin`` account when there are no users at all.

        Returns the generated password (to print once) or None when an account existed or the
        password came from ``password_file``.
        """
        if self.count():
            return None
        password, generated = None, None
        if password_file:
            try:
                password = Path(password_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise ValidationError(f"Cannot read the admin password file {password_file}: "
                                      f"{getattr(e, 'strerror', None) or e}.") from e
            problem = password_problem(password)
            if problem:
                raise ValidationError(f"The admin password in {password_file} cannot be used: "
                                      f"{problem}.")
        if password is None:
            password = generated = secrets.token_urlsafe(15)
        system = Principal.system("first-start")
        with self._db.session() as session:
            if session.scalar(select(func.count()).select_from(UserRow)):
                return None  # another process made it meanwhile
            session.add(UserRow(username=FIRST_ADMIN, password_hash=hash_password(password),
                                roles=",".join(sorted(FIRST_ADMIN_ROLES)), disabled=False,
                                created_at=_now(), created_by=system.name, failed_logins=0))
            session.add(self._audit.row(system, "users.add", f"user {FIRST_ADMIN}", "ok",
                                        "first start: the first administrator"))
        return generated

    # -- signing in -----------------------------------------------------------------------
    def authenticate(self, username: str, password: str, via: str = "password") -> Principal:
        """The user's principal, or AuthenticationError with one message for every failure
        (unknown user, wrong password, disabled) so that names cannot be probed; after
        FREE_ATTEMPTS failures the account waits an increasing time between attempts."""
        now = _now()
        failure = None
        with self._db.session() as session:  # commits the failure count and audit, then raises
            # A name no account can have is not looked up (nor sent to the database).
            row = (session.scalar(select(UserRow).where(UserRow.username == username))
                   if USERNAME.match(username or "") else None)
            if row is not None and row.locked_until is not None and _aware(row.locked_until) > now:
                wait = int((_aware(row.locked_until) - now).total_seconds()) + 1
                self._audit_in(session, username, "refused", f"locked for {wait} s more")
                failure = f"Too many failed sign-ins: try again in {wait} s."
            else:
                matches = verify_password(row.password_hash if row else None, password or "")
                if row is None or not matches or row.disabled:
                    if row is not None:
                        row.failed_logins = (row.failed_logins or 0) + 1
                        over = row.failed_logins - FREE_ATTEMPTS
                        if over >= 0:
                            row.locked_until = now + timedelta(
                                seconds=min(BACKOFF_START_S * 2 ** over, BACKOFF_MAX_S))
                    reason = ("unknown user" if row is None else
                              "disabled" if row.disabled and matches else "wrong password")
                    self._audit_in(session, username, "refused", reason)
                    failure = SIGN_IN_FAILED
                else:
                    row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
                    if needs_rehash(row.password_hash):
                        row.password_hash = hash_password(password)
                    self._audit_in(session, username, "ok", via)
                    principal = principal_of(row, via)
        if failure is not None:
            raise AuthenticationError(failure)
        return principal

    def _audit_in(self, session, username: str, outcome: str, detail: str) -> None:
        name = username if USERNAME.match(username or "") else "anonymous"
        session.add(self._audit.row(name, "users.sign_in", f"user {name}", outcome, detail))

    def _row(self, session, username: str) -> UserRow:
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise ValidationError(f"There is no user {username!r}; list them with "
                                  "'nautilus-workbench users list'.")
        return row

    @staticmethod
    def _keep_an_admin(session, username: str) -> None:
        others = [r for r in session.scalars(select(UserRow).where(UserRow.username != username,
                                                                    UserRow.disabled.is_(False)))
                  if ADMIN in r.roles.split(",")]
        if not others:
            raise ValidationError(f"{username!r} is the last active admin; make another admin "
                                  "first.")
