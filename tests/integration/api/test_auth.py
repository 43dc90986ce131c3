"""Bad credentials and hostile requests against the served API: each gets the right status and
a one-line message, refused control actions are audited, and nothing changes."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.integration.api.conftest import (
    ADMIN_PASSWORD,
    ENGINE_ROOT,
    PASSWORD,
    SEEDED_SESSION,
    serve,
    shutdown,
)

pytestmark = pytest.mark.integration


def _audit(served, actor: str, action: str) -> list[tuple[str, str]]:
    wb = served.workbench()
    try:
        return [(e.outcome, e.detail or "") for e in wb.audit.entries(action, actor=actor)]
    finally:
        wb.database.dispose()


def test_a_bad_token_is_401_and_says_what_is_wrong(api_without_docker):
    served = api_without_docker
    wb = served.workbench()
    try:
        wb.users.add("shortlived", ["trader"], PASSWORD)
        _, expiring = wb.tokens.create("soon", username="shortlived", expires_days=1 / 86400)
        revoked_info, revoked = wb.tokens.create("revoked", username="shortlived")
        wb.tokens.revoke(revoked_info.token_id)
        wb.users.add("leaver", ["trader"], PASSWORD)
        _, disabled = wb.tokens.create("x", username="leaver")
        wb.users.set_disabled("leaver")
    finally:
        wb.database.dispose()
    time.sleep(1.2)
    cases = {"garbage": "not a workbench API token", "nwb_0000_guess": "not valid",
             expiring: "expired", revoked: "was revoked", disabled: "disabled"}

    for token, fragment in cases.items():
        # Act
        response = served.request("get", f"{ENGINE_ROOT}/status",
                                  headers={"Authorization": f"Bearer {token}"})

        # Assert
        assert response.status_code == 401, token
        assert fragment in response.json()["error"]
        assert "\n" not in response.json()["error"]


def test_the_actor_header_grants_nothing(api_without_docker):
    served = api_without_docker
    body = {"template": "paper_trading", "parameters": {"replay_speed": 600}}

    anonymous = served.request("post", f"{ENGINE_ROOT}/start", json=body,
                               headers={"X-Workbench-Actor": "local"})
    as_viewer = served.request("post", f"{ENGINE_ROOT}/start", "viewer", json=body,
                               headers={"X-Workbench-Actor": "role-admin"})

    assert anonymous.status_code == 401
    assert as_viewer.status_code == 403 and "role-viewer may not" in as_viewer.json()["error"]
    assert ("refused", "role-viewer may not start engines: the trader role is needed.") in \
        _audit(served, "role-viewer", "engine.start")


def test_bodies_must_be_json_and_small(api_without_docker):
    served = api_without_docker
    url = f"{ENGINE_ROOT}/emergency-stop"

    text = served.request("post", url, "trader", data='{"all": true}',
                          headers={"Content-Type": "text/plain"})
    form = served.request("post", url, "trader", data={"all": "true"})
    huge = served.request("post", url, "trader", data=b"{" + b" " * (50 * 1024 * 1024) + b"}",
                          headers={"Content-Type": "application/json"})
    deep = served.request("post", url, "trader", data="[" * 100_000 + "]" * 100_000,
                          headers={"Content-Type": "application/json"})

    assert text.status_code == 415 and "application/json" in text.json()["error"]
    assert form.status_code == 415
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]
    assert deep.status_code == 400 and "not valid JSON" in deep.json()["error"]


def test_cross_site_requests_and_foreign_hosts_are_refused(api_without_docker):
    served = api_without_docker

    cross = served.request("post", f"{ENGINE_ROOT}/emergency-stop", "trader",
                           json={"all": True}, headers={"Origin": "http://evil.example"})
    rebound = served.request("get", "/api/v1/health/live",
                             headers={"Host": "evil.example:5077"})
    login = served.request("post", "/login", data={"username": "admin",
                                                   "password": ADMIN_PASSWORD},
                           headers={"Origin": "http://evil.example"}, allow_redirects=False)

    assert cross.status_code == 403 and "another site" in cross.json()["error"]
    assert rebound.status_code == 400
    assert login.status_code == 403 and "Set-Cookie" not in login.headers


@pytest.mark.parametrize("session_id", ["../../etc/passwd", "' OR 1=1 --", "5eed0000beef/..",
                                        "a" * 200])
def test_hostile_ids_are_422_and_change_nothing(api_without_docker, session_id):
    served = api_without_docker

    stop = served.request("post", f"{ENGINE_ROOT}/stop", "trader",
                          json={"session_id": session_id})
    logs = served.request("get", f"{ENGINE_ROOT}/logs", "viewer",
                          params={"session_id": session_id})
    run = served.request("get", f"{ENGINE_ROOT}/backtest/{quote(session_id, safe='')}",
                         "viewer")

    assert stop.status_code == 422 and stop.json()["problems"]
    assert logs.status_code == 422
    assert run.status_code in (404, 422)
    status = served.request("get", f"{ENGINE_ROOT}/status", "viewer",
                            params={"session_id": SEEDED_SESSION}).json()
    assert status["engine"]["state"] == "Stopped"


def test_tokens_for_a_password_and_the_same_answer_for_every_bad_sign_in(api_without_docker):
    served = api_without_docker

    good = served.request("post", "/api/v1/auth/token", json={
        "username": "role-approver", "password": PASSWORD, "name": "laptop"})
    wrong = served.request("post", "/api/v1/auth/token", json={
        "username": "role-approver", "password": "nope-nope-nope"})
    nobody = served.request("post", "/api/v1/auth/token", json={
        "username": "nobody-here", "password": "nope-nope-nope"})

    assert good.status_code == 201
    me = served.request("get", "/api/v1/auth/me",
                        headers={"Authorization": f"Bearer {good.json()['token']}"})
    assert me.json() == {"username": "role-approver", "roles": ["approver", "viewer"]}
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json() == {"error": "Wrong username or password."}


def test_five_failed_sign_ins_lock_the_account_for_a_while(api_without_docker):
    served = api_without_docker
    wb = served.workbench()
    try:
        wb.users.add("forgetful", ["viewer"], PASSWORD)
    finally:
        wb.database.dispose()

    answers = [served.request("post", "/api/v1/auth/token", json={
        "username": "forgetful", "password": f"wrong-{i}"}) for i in range(6)]
    right_too_soon = served.request("post", "/api/v1/auth/token", json={
        "username": "forgetful", "password": PASSWORD})

    assert [a.status_code for a in answers] == [401] * 6
    assert answers[4].json()["error"] == "Wrong username or password."
    assert "Too many failed sign-ins: try again in" in answers[5].json()["error"]
    assert right_too_soon.status_code == 401 and "Too many" in right_too_soon.json()["error"]
    outcomes = [o for o, _ in _audit(served, "forgetful", "users.sign_in")]
    assert outcomes.count("refused") == 7


@pytest.fixture(scope="module")
def slow_api(tmp_path_factory, readable_catalog, new_database_url):
    served = serve(tmp_path_factory.mktemp("api-rate"), readable_catalog,
                   {"DOCKER_HOST": "unix:///nonexistent/docker.sock",
                    "WORKBENCH_API_CONTROL_RATE": "3/minute"}, database_url=new_database_url())
    yield served
    shutdown(served)


def test_control_calls_are_rate_limited_per_token_but_never_the_emergency_stop(slow_api):
    body = {"session_id": SEEDED_SESSION}

    first = [slow_api.request("post", f"{ENGINE_ROOT}/stop", "trader", json=body)
             for _ in range(3)]
    limited = slow_api.request("post", f"{ENGINE_ROOT}/stop", "trader", json=body)
    other_token = slow_api.request("post", f"{ENGINE_ROOT}/stop", "live_trader", json=body)
    kills = [slow_api.request("post", f"{ENGINE_ROOT}/emergency-stop", "trader", json=body)
             for _ in range(5)]

    assert [r.status_code for r in first] == [409, 409, 409]  # a stopped engine: nothing to stop
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "retry in" in limited.json()["error"]
    assert other_token.status_code != 429
    assert all(k.status_code not in (429, 401, 403) for k in kills)
