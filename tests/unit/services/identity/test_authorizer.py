from __future__ import annotations

import pytest

from services.errors import AuthenticationError, PermissionDenied
from services.identity.authorizer import Authorizer, check
from services.identity.principal import Principal
from services.identity.roles import PERMISSIONS, ROLES, role_matrix


def test_live_actions_need_the_live_role_and_paper_ones_the_trader_role():
    trader = Principal.user("tess", {"trader"})
    live = Principal.user("lou", {"live_trader"})

    assert check(trader, "engine.start") == (True, "")
    assert check(trader, "engine.start", live=True) == (
        False, "tess may not start engines live: the live_trader role is needed.")
    assert check(live, "engine.emergency_stop", live=True)[0]
    assert not check(live, "engine.emergency_stop")[0]


def test_controlling_another_users_run_needs_an_admin():
    rico = Principal.user("rico", {"researcher"})

    assert check(rico, "backtest.control", owner="rico")[0]
    assert check(rico, "backtest.control", owner="olga") == (
        False, "rico may not pause, resume or cancel backtests of another user: the admin role "
               "is needed.")
    assert check(Principal.user("ada", {"admin"}), "backtest.control", owner="olga")[0]


def test_the_system_principal_holds_no_role_and_nobody_is_refused_as_anonymous(tmp_path):
    authorizer = Authorizer(None, None)

    with pytest.raises(PermissionDenied):
        authorizer.require(Principal.system("monitor"), "engine.start", "x")
    with pytest.raises(AuthenticationError, match="Sign in first"):
        authorizer.require(None, "engine.start", "x")
    local = Authorizer(None, Principal.local())
    assert local.require(None, "catalog.delete", "x").kind == "local"


def test_the_readme_matrix_covers_every_action_and_role():
    rows = role_matrix()

    assert [action for action, _, _ in rows] == list(PERMISSIONS)
    assert all(set(cells) == set(ROLES) for _, _, cells in rows)
    engine_start = next(cells for action, _, cells in rows if action == "engine.start")
    assert engine_start == {"viewer": "", "researcher": "", "trader": "yes",
                            "live_trader": "live", "approver": "", "admin": ""}


def test_the_readme_shows_the_role_matrix_of_the_code():
    from services.identity.roles import role_matrix_markdown
    from tests.conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    shown = readme.split("<!-- role-matrix -->\n")[1].split("\n<!-- /role-matrix -->")[0]

    assert shown == role_matrix_markdown()
