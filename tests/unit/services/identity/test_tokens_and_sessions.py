from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from services.db import ApiTokenRow, UserSessionRow
from services.errors import AuthenticationError, PermissionDenied, ValidationError
from services.identity.principal import Principal

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(identity, admin) -> Principal:
    identity.users.add("alice", ["trader"], PASSWORD, principal=admin)
    return identity.users.authenticate("alice", PASSWORD)


def test_a_token_acts_as_its_user_until_revoked(identity, alice):
    token, secret = identity.tokens.create("laptop", principal=alice)

    principal = identity.tokens.authenticate(secret)
    identity.tokens.revoke(token.token_id, principal=alice)

    assert (principal.name, principal.via) == ("alice", f"token {token.token_id}")
    with pytest.raises(AuthenticationError, match=f"Token {token.token_id} was revoked"):
        identity.tokens.authenticate(secret)


def test_only_the_hash_of_a_token_is_stored(identity, alice):
    _, secret = identity.tokens.create("laptop", principal=alice)

    with identity.database.session() as session:
        stored = session.scalar(select(ApiTokenRow.secret_hash))

    assert secret not in stored and len(stored) == 64


def test_expired_tokens_and_tokens_of_disabled_users_stop_working(identity, alice, admin):
    token, secret = identity.tokens.create("short", expires_days=1, principal=alice)
    with identity.database.session() as session:
        session.execute(update(ApiTokenRow).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="expired"):
        identity.tokens.authenticate(secret)

    _, other = identity.tokens.create("other", principal=alice)
    identity.users.set_disabled("alice", principal=admin)
    with pytest.raises(AuthenticationError, match="alice of token .* is disabled"):
        identity.tokens.authenticate(other)


def test_users_see_and_revoke_only_their_own_tokens(identity, alice, admin):
    identity.users.add("bob", ["viewer"], PASSWORD, principal=admin)
    bob = identity.users.authenticate("bob", PASSWORD)
    mine, _ = identity.tokens.create("alice's", principal=alice)
    identity.tokens.create("bob's", principal=bob)

    assert [t.name for t in identity.tokens.list(principal=alice)] == ["alice's"]
    with pytest.raises(PermissionDenied, match="bob may not revoke API tokens of another user"):
        identity.tokens.revoke(mine.token_id, principal=bob)
    assert {t.name for t in identity.tokens.list(all_users=True, principal=admin)} == {
        "alice's", "bob's"}
    with pytest.raises(PermissionDenied):
        identity.tokens.create("for alice", username="alice", principal=bob)


@pytest.mark.parametrize(("days", "fragment"), [(0, "between 0 and 3650"), (-1, "between"),
                                                 (4000, "between")])
def test_bad_expiries_are_refused(identity, alice, days, fragment):
    with pytest.raises(ValidationError, match=fragment):
        identity.tokens.create("x", expires_days=days, principal=alice)


def test_a_session_works_until_sign_out_idle_timeout_or_lifetime(identity, alice):
    secret = identity.sessions.start(alice, "pytest", "127.0.0.1")
    assert identity.sessions.resolve(secret).name == "alice"

    identity.sessions.end(secret)
    with pytest.raises(AuthenticationError, match="signed out"):
        identity.sessions.resolve(secret)

    idle = identity.sessions.start(alice)
    with identity.database.session() as session:
        session.execute(update(UserSessionRow).values(
            last_seen_at=datetime.now(UTC) - identity.sessions.idle_timeout - timedelta(1)))
    with pytest.raises(AuthenticationError, match="expired"):
        identity.sessions.resolve(idle)
    with pytest.raises(AuthenticationError, match="Not signed in"):
        identity.sessions.resolve("forged")
