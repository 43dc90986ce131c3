"""The account and user pages' components over real identity services."""

from __future__ import annotations

from components import AccountPanel, UserAdmin
from services.identity.principal import Principal

PASSWORD = "a password of ten+"


def test_a_user_creates_a_token_sees_it_once_and_revokes_it(workbench):
    workbench.users.add("alice", ["trader"], PASSWORD)
    alice = workbench.users.authenticate("alice", PASSWORD)
    panel = AccountPanel(workbench=workbench, principal=alice)
    # Before any token: a sentence instead of an empty table, and nothing to revoke.
    assert panel._no_tokens.visible and not panel._tokens.visible
    assert panel._revoke.disabled

    panel.token_name = "laptop"
    panel.param.trigger("create")
    secret = panel._secret.value

    assert workbench.tokens.authenticate(secret).name == "alice"
    assert list(panel._tokens.value["Name"]) == ["laptop"] and secret not in panel.message
    token_id = panel._tokens.value["Id"].iloc[0]
    assert panel.param.selected.names == {f"laptop ({token_id})": token_id}
    assert panel._tokens.visible and not panel._revoke.disabled
    panel.param.trigger("revoke")
    assert list(panel._tokens.value["State"]) == ["revoked"] and "revoked" in panel.message
    assert panel._revoke.disabled  # the only token is revoked


def test_only_an_admin_adds_and_disables_users(workbench):
    viewer = UserAdmin(workbench=workbench, principal=Principal.user("vic", {"viewer"}))
    admin = UserAdmin(workbench=workbench, principal=Principal.user("ada", {"admin"}))

    viewer.username = "mallory"
    viewer.param.trigger("add")
    admin.username, admin.roles = "tom", ["trader"]
    admin.param.trigger("add")
    admin.selected = "tom"
    admin.param.trigger("disable")

    assert "vic may not manage users" in viewer.message
    assert [(u.username, u.disabled) for u in workbench.users.list()] == [("tom", True)]
    assert "their password (shown once)" not in admin.message  # the last message: disabled
    assert "Disabled tom" in admin.message
