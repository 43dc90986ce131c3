"""The users and tokens CLI contract, and commands acting as WORKBENCH_TOKEN's user."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import main as cli
from services.identity.principal import Principal
from services.workbench import Workbench

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    """``run("users", "list", stdin="...")`` -> (exit code, stdout, stderr)."""
    base = ["--state-dir", str(tmp_path / "state"), "--catalog", str(tmp_path / "catalog")]

    def invoke(*args: str, stdin: str = "", token: str | None = None):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        if token is None:
            monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
        else:
            monkeypatch.setenv("WORKBENCH_TOKEN", token)
        code = cli([*args, *base])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _audit(tmp_path, prefix: str) -> list[tuple[str, str, str]]:
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(tmp_path / "catalog"))
    try:
        return [(e.actor, e.action, e.outcome) for e in wb.audit.entries(prefix)][::-1]
    finally:
        wb.database.dispose()


def test_users_and_tokens_contract(run, tmp_path):
    # users add (password from stdin), with a generated password, list, disable
    code, out, _ = run("users", "add", "alice", "--role", "researcher", "--password-stdin",
                       "--json", stdin="alice's password\n")
    assert code == 0 and json.loads(out)["roles"] == ["viewer", "researcher"]
    assert "password" not in json.loads(out)
    code, out, _ = run("users", "add", "bob", "--role", "viewer", "--json")
    assert code == 0 and len(json.loads(out)["password"]) >= 16
    code, out, _ = run("users", "list", "--json")
    assert [(u["username"], u["disabled"]) for u in json.loads(out)] == [("alice", False),
                                                                          ("bob", False)]

    # tokens create prints {"token": ...} once; list; revoke
    code, out, _ = run("tokens", "create", "alice", "--expires-days", "7", "--json")
    created = json.loads(out)
    assert code == 0 and created["token"].startswith("nwb_") and created["username"] == "alice"
    code, out, _ = run("tokens", "list", "--json")
    assert [t["token_id"] for t in json.loads(out)] == [created["token_id"]]
    assert "token" not in json.loads(out)[0]
    code, out, _ = run("tokens", "revoke", created["token_id"])
    assert code == 0 and "revoked" in out
    code, _, err = run("catalog", "list", token=created["token"])
    assert code == 2 and err.strip() == f"error: Token {created['token_id']} was revoked."

    code, _, _ = run("users", "disable", "bob")
    assert code == 0
    assert _audit(tmp_path, "users.") == [
        (Principal.local().name, "users.add", "ok"), (Principal.local().name, "users.add", "ok"),
        (Principal.local().name, "users.disable", "ok")]


def test_commands_act_as_the_tokens_user_and_are_refused_without_the_role(run, tmp_path):
    run("users", "add", "vera", "--role", "viewer")
    run("users", "add", "ada", "--role", "admin")
    _, out, _ = run("tokens", "create", "vera", "--json")
    viewer = json.loads(out)["token"]
    _, out, _ = run("tokens", "create", "ada", "--json")
    admin = json.loads(out)["token"]

    refused = run("users", "add", "mallory", "--role", "admin", token=viewer)
    accepted = run("users", "add", "carl", "--role", "trader", token=admin)
    listed = run("tokens", "list", token=viewer)

    assert refused[0] == 2
    assert refused[2].strip() == "error: vera may not manage users: the admin role is needed."
    assert accepted[0] == 0
    assert listed[0] == 0 and "vera" in listed[1] and "ada" not in listed[1]
    entries = _audit(tmp_path, "users.")
    assert ("vera", "users.manage", "refused") in entries  # refusals name the permission
    assert ("ada", "users.add", "ok") in entries


@pytest.mark.parametrize(("args", "fragment"), [
    (("users", "add", "x", "--role", "god"), "Unknown role 'god'"),
    (("users", "add", "Bad Name", "--role", "viewer"), "is not valid"),
    (("tokens", "revoke", "nope"), "There is no token 'nope'"),
    (("tokens", "create", "ghost"), "There is no user 'ghost'"),
    (("users", "disable", "ghost"), "There is no user 'ghost'"),
])
def test_bad_identity_input_is_one_line_and_exit_2(run, args, fragment):
    code, out, err = run(*args)

    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
