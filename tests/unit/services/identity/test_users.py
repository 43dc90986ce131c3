from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.db import UserRow
from services.errors import AuthenticationError, PermissionDenied, ValidationError
from services.identity.passwords import verify_password
from services.identity.principal import Principal

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_the_password_and_gets_their_roles(identity, admin):
    identity.users.add("alice", ["trader", "approver"], PASSWORD, principal=admin)

    principal = identity.users.authenticate("alice", PASSWORD)

    assert (principal.name, principal.kind) == ("alice", "user")
    assert principal.roles == {"trader", "approver", "viewer"}
    assert identity.users.get("alice").last_login_at is not None


def test_the_password_is_stored_only_as_an_argon2id_hash(identity, admin):
    identity.users.add("alice", ["viewer"], PASSWORD, principal=admin)

    with identity.database.session() as session:
        stored = session.scalar(select(UserRow.password_hash))

    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored and verify_password(stored, PASSWORD)


def test_every_sign_in_failure_says_the_same_and_is_audited(identity, admin):
    identity.users.add("alice", ["viewer"], PASSWORD, principal=admin)
    identity.users.add("bob", ["viewer"], PASSWORD, principal=admin)
    identity.users.set_disabled("bob", principal=admin)

    messages = []
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD),
                               ("bob", PASSWORD), ("al\x00ice", PASSWORD)):
        with pytest.raises(AuthenticationError) as failed:
            identity.users.authenticate(username, password)
        messages.append(str(failed.value))

    assert messages == ["Wrong username or password."] * 4
    details = {(e.actor, e.detail) for e in identity.audit.entries("users.sign_in")}
    assert details == {("alice", "wrong password"), ("nobody", "unknown user"),
                       ("bob", "disabled"), ("anonymous", "unknown user")}


def test_after_five_failures_the_account_waits_longer_each_time(identity, admin):
    identity.users.add("alice", ["viewer"], PASSWORD, principal=admin)
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="Wrong username"):
            identity.users.authenticate("alice", "wrong password")

    # Locked: even the right password waits
    with pytest.raises(AuthenticationError, match=r"try again in (29|30|31) s"):
        identity.users.authenticate("alice", PASSWORD)

    # The lock over (as if 31 s had passed), the right password works and resets the count
    with identity.database.session() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == "alice"))
        row.locked_until = datetime.now(UTC) - timedelta(seconds=1)
    assert identity.users.authenticate("alice", PASSWORD).name == "alice"
    with identity.database.session() as session:
        assert session.scalar(select(UserRow.failed_logins)) == 0


def test_only_admins_manage_users_and_the_last_admin_stays(identity, admin):
    identity.users.add("root2", ["admin"], PASSWORD, principal=admin)
    trader = Principal.user("tess", {"trader"})

    with pytest.raises(PermissionDenied, match="tess may not manage users: the admin role"):
        identity.users.add("eve", ["admin"], PASSWORD, principal=trader)
    with pytest.raises(ValidationError, match="last active admin"):
        identity.users.set_disabled("root2", principal=admin)
    assert [u.username for u in identity.users.list()] == ["root2"]
    assert ("refused", "tess may not manage users: the admin role is needed.") in {
        (e.outcome, e.detail) for e in identity.audit.entries("users.")}


@pytest.mark.parametrize(("username", "roles", "password", "fragment"), [
    ("Alice", ["viewer"], PASSWORD, "is not valid"),
    ("a", ["viewer"], PASSWORD, "is not valid"),
    ("alice'; drop table users;--", ["viewer"], PASSWORD, "is not valid"),
    ("alice", ["superuser"], PASSWORD, "Unknown role 'superuser'"),
    ("alice", [], PASSWORD, "at least one role"),
    ("alice", ["viewer"], "short", "at least 10 characters (this one has 5)"),
])
def test_bad_user_input_is_refused_with_the_reason(identity, admin, username, roles, password,
                                                   fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        identity.users.add(username, roles, password, principal=admin)
    assert identity.users.list() == []


def test_the_first_admin_is_made_once_with_a_password_to_print(identity):
    generated = identity.users.ensure_first_admin()

    assert len(generated) >= 16
    assert identity.users.authenticate("admin", generated).has("admin")
    assert identity.users.ensure_first_admin() is None  # a second start changes nothing


def test_an_admin_password_file_sets_the_first_password(tmp_path):
    from services.audit import AuditLog
    from services.db import Database
    from services.identity.authorizer import Authorizer
    from services.identity.users import UserService

    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.upgrade()
    audit = AuditLog(database)
    users = UserService(database, audit, Authorizer(audit, None))
    (tmp_path / "pw").write_text("given password 123\n")
    (tmp_path / "short").write_text("short\n")

    with pytest.raises(ValidationError, match="cannot be used: a password needs at least 10"):
        users.ensure_first_admin(tmp_path / "short")
    assert users.ensure_first_admin(tmp_path / "pw") is None
    assert users.authenticate("admin", "given password 123").name == "admin"
    database.dispose()
