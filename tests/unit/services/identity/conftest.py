"""A migrated SQLite database and the identity services over it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.audit import AuditLog
from services.db import Database
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.identity.sessions import SessionService
from services.identity.tokens import TokenService
from services.identity.users import UserService


@dataclass
class Identity:
    database: Database
    audit: AuditLog
    users: UserService
    tokens: TokenService
    sessions: SessionService


@pytest.fixture
def identity(tmp_path) -> Identity:
    database = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    database.upgrade()
    audit = AuditLog(database)
    # As in the server: no default principal, every call names who acts.
    authorizer = Authorizer(audit, None)
    yield Identity(database, audit, UserService(database, audit, authorizer),
                   TokenService(database, audit, authorizer), SessionService(database, audit))
    database.dispose()


@pytest.fixture
def admin() -> Principal:
    return Principal.local()
