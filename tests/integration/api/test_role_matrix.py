"""Every API route x {no token, each role}: the status the role matrix says, generated from the
served OpenAPI document (each route declares its access) and services.identity.roles.

Runs against a server whose Docker daemon is unreachable, so an allowed action never starts a
container: it answers with its own outcome (404, 409, 422, 503 ...), never 401 or 403. A route
the test does not know how to call fails the test: adding a route means adding it here.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.db import AuditEntry
from services.identity.roles import PERMISSIONS, ROLES
from tests.integration.api.conftest import (
    ENGINE_ROOT,
    PASSWORD,
    RUN_OWNER,
    SEEDED_DEPLOYMENT,
    SEEDED_REQUEST,
    SEEDED_RUN,
    SEEDED_SESSION,
)

pytestmark = pytest.mark.integration

AAPL = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
PIPELINE = "/api/v1/strategies"
NO_VERSION = "abcdef012345"  # no such version: an allowed caller gets 404 after authorisation
# Requests that reach every route's service call; where the action would change something
# for real, the body is invalid after authorisation (422) or Docker answers 503.
REQUESTS: dict[tuple[str, str], dict] = {
    ("get", "/api/v1/health/live"): {},
    ("post", "/api/v1/auth/token"): {"json": {"username": "role-viewer", "password": PASSWORD}},
    ("get", "/api/v1/auth/me"): {},
    ("post", f"{ENGINE_ROOT}/start"): {"json": {"template": "paper_trading", "parameters": {
        "fast_ema_period": 30, "slow_ema_period": 20}}},
    ("post", f"{ENGINE_ROOT}/stop"): {"json": {"session_id": SEEDED_SESSION}},
    ("post", f"{ENGINE_ROOT}/restart"): {"json": {"session_id": SEEDED_SESSION}},
    ("post", f"{ENGINE_ROOT}/emergency-stop"): {"json": {"session_id": SEEDED_SESSION}},
    ("get", f"{ENGINE_ROOT}/status"): {},
    ("get", f"{ENGINE_ROOT}/health"): {},
    ("get", f"{ENGINE_ROOT}/logs"): {"params": {"session_id": SEEDED_SESSION}},
    ("get", f"{ENGINE_ROOT}/containers"): {},
    ("delete", f"{ENGINE_ROOT}/containers/cleanup"): {},
    ("put", f"{ENGINE_ROOT}/config"): {"json": {"session_id": SEEDED_SESSION,
                                                "parameters": {"slow_ema_period": 3}}},
    ("get", f"{ENGINE_ROOT}/backtests"): {},
    ("post", f"{ENGINE_ROOT}/backtests"): {"json": {
        "strategy": "ema_cross", "bar_type": AAPL, "grid": {"fast_ema_period": [30, 40]},
        "fixed": {"slow_ema_period": 20}}},
    ("post", f"{ENGINE_ROOT}/backtest"): {"json": {
        "strategy": "ema_cross", "bar_type": AAPL, "parameters": {
            "fast_ema_period": 30, "slow_ema_period": 20}}},
    ("get", f"{ENGINE_ROOT}/backtest/{{run_id}}"): {"run_id": SEEDED_RUN},
    ("delete", f"{ENGINE_ROOT}/backtest/{{run_id}}"): {"run_id": SEEDED_RUN},
    ("post", f"{ENGINE_ROOT}/order"): {"json": {"session_id": SEEDED_SESSION,
                                                "instrument_id": "BTCUSDT-PERP.BINANCE",
                                                "side": "BUY", "quantity": "0.01"}},
    ("get", f"{ENGINE_ROOT}/orders"): {"params": {"session_id": SEEDED_SESSION}},
    ("get", f"{ENGINE_ROOT}/fills"): {"params": {"session_id": SEEDED_SESSION}},
    ("get", f"{ENGINE_ROOT}/positions"): {"params": {"session_id": SEEDED_SESSION}},
    ("post", f"{ENGINE_ROOT}/cancel"): {"json": {"session_id": SEEDED_SESSION,
                                                 "client_order_id": "O-1"}},
    ("post", f"{ENGINE_ROOT}/modify"): {"json": {"session_id": SEEDED_SESSION,
                                                 "client_order_id": "O-1", "price": "1.5"}},
    ("post", f"{ENGINE_ROOT}/cancel-all"): {"json": {"session_id": SEEDED_SESSION}},
    ("post", f"{ENGINE_ROOT}/close-position"): {"json": {"session_id": SEEDED_SESSION,
                                                         "instrument_id": "BTCUSDT-PERP.BINANCE"}},
    ("post", f"{ENGINE_ROOT}/flatten"): {"json": {"session_id": SEEDED_SESSION}},
    ("post", f"{ENGINE_ROOT}/trading-state"): {"json": {"session_id": SEEDED_SESSION,
                                                        "state": "HALTED"}},
    ("post", f"{ENGINE_ROOT}/strategy"): {"json": {"session_id": SEEDED_SESSION,
                                                   "action": "pause",
                                                   "strategy_id": "EMACross-000"}},
    ("get", f"{ENGINE_ROOT}/risk"): {"params": {"session_id": SEEDED_SESSION}},
    ("put", f"{ENGINE_ROOT}/risk"): {"json": {"session_id": SEEDED_SESSION,
                                              "settings": {"max_daily_loss": "abc"}}},
    ("get", f"{ENGINE_ROOT}/feed"): {"params": {"session_id": SEEDED_SESSION}},
    ("get", "/api/v1/alerts"): {},
    ("get", "/api/v1/alerts/rules"): {},
    ("put", "/api/v1/alerts/rules/{name}"): {"name": "risk_breach", "json": {"threshold": 5}},
    ("post", "/api/v1/metrics"): {"json": {"metric_name": "test.metric", "value": 1.5,
                                           "source": "role-matrix"}},
    ("get", "/api/v1/metrics"): {"params": {"name": "test.metric"}},
    ("get", f"{ENGINE_ROOT}/strategies/templates"): {},
    ("get", f"{ENGINE_ROOT}/strategies/templates/{{name}}"): {"name": "ema_cross"},
    ("post", f"{ENGINE_ROOT}/strategies/validate"): {"json": {"strategy": "ema_cross"}},
    ("get", f"{PIPELINE}/versions"): {},
    ("post", f"{PIPELINE}/versions"): {"json": {"run_id": SEEDED_RUN}},  # a failed run: 422
    ("get", f"{PIPELINE}/versions/{{version_id}}"): {"version_id": NO_VERSION},
    ("get", f"{PIPELINE}/diff"): {"params": {"left": NO_VERSION, "right": NO_VERSION}},
    ("get", f"{PIPELINE}/promotions"): {},
    ("post", f"{PIPELINE}/promotions"): {"json": {"version_id": NO_VERSION, "stage": "paper"}},
    ("get", f"{PIPELINE}/promotions/{{request_id}}"): {"request_id": SEEDED_REQUEST},
    # The seeded version has no backtest: an approval is refused by its gate (409).
    ("post", f"{PIPELINE}/promotions/{{request_id}}/approve"): {"request_id": SEEDED_REQUEST,
                                                                "json": {}},
    ("post", f"{PIPELINE}/promotions/{{request_id}}/reject"): {"request_id": SEEDED_REQUEST,
                                                               "json": {"comment": ""}},
    ("get", f"{PIPELINE}/deployments"): {},
    ("post", f"{PIPELINE}/deployments"): {"json": {"version_id": NO_VERSION, "stage": "paper"}},
    ("get", f"{PIPELINE}/deployments/{{deployment_id}}"): {"deployment_id": SEEDED_DEPLOYMENT},
    ("post", f"{PIPELINE}/deployments/{{deployment_id}}/stop"): {
        "deployment_id": SEEDED_DEPLOYMENT},
    ("post", f"{PIPELINE}/deployments/{{deployment_id}}/emergency-stop"): {
        "deployment_id": SEEDED_DEPLOYMENT},
    ("post", f"{PIPELINE}/deployments/{{deployment_id}}/rollback"): {
        "deployment_id": SEEDED_DEPLOYMENT, "json": {}},
    ("post", f"{PIPELINE}/deployments/{{deployment_id}}/rollout"): {
        "deployment_id": SEEDED_DEPLOYMENT, "json": {}},
    ("post", f"{PIPELINE}/deployments/{{deployment_id}}/drift"): {
        "deployment_id": SEEDED_DEPLOYMENT},
    ("get", f"{PIPELINE}/deployments/{{deployment_id}}/drift"): {
        "deployment_id": SEEDED_DEPLOYMENT},
    ("get", f"{PIPELINE}/deployments/{{deployment_id}}/drift/report"): {
        "deployment_id": SEEDED_DEPLOYMENT},
}
# Who owns the object each action targets (None: ownership does not matter).
OWNERS = {"backtest.control": RUN_OWNER}


def _operations(served):
    document = served.request("get", "/api/v1/openapi.json").json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation.get("x-workbench-access")


def _call(served, method: str, path: str, role: str | None):
    spec = dict(REQUESTS[(method, path)])
    for name in ("run_id", "name", "version_id", "request_id", "deployment_id"):
        if name in spec:
            path = path.replace(f"{{{name}}}", spec.pop(name))
    return served.request(method, path, role, **spec)


def _expected_allowed(action: str, role: str) -> bool:
    permission = PERMISSIONS[action]
    owner = OWNERS.get(action)
    return role in permission.needed(other_owner=owner is not None and owner != f"role-{role}")


def test_every_route_declares_its_access_and_is_covered(api_without_docker):
    # Act
    operations = list(_operations(api_without_docker))

    # Assert
    undeclared = [(m, p) for m, p, access in operations if access is None]
    assert undeclared == []
    unknown = [(m, p, a) for m, p, a in operations
               if a not in ("public", "read") and a not in PERMISSIONS]
    assert unknown == []
    assert {(m, p) for m, p, _ in operations} == set(REQUESTS)


def test_without_a_token_every_route_but_the_public_ones_is_401(api_without_docker):
    for method, path, access in _operations(api_without_docker):
        response = _call(api_without_docker, method, path, None)
        if access == "public":
            assert response.status_code < 400, (method, path, response.text)
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "Bearer" in response.json()["error"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_gives_it(api_without_docker, role):
    refused = []
    for method, path, access in _operations(api_without_docker):
        # Act
        response = _call(api_without_docker, method, path, role)

        # Assert
        assert response.status_code < 500 or response.status_code == 503, (
            method, path, response.status_code, response.text)
        if access in ("public", "read") or _expected_allowed(access, role):
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert f"role-{role} may not" in response.json()["error"]
            refused.append(access)

    # Every refusal is in the audit log, with the real user.
    wb = api_without_docker.workbench()
    try:
        with wb.database.session() as session:
            audited = [e.action for e in session.scalars(
                select(AuditEntry).where(AuditEntry.actor == f"role-{role}",
                                         AuditEntry.outcome == "refused"))]
    finally:
        wb.database.dispose()
    assert sorted(set(refused)) == sorted(set(audited) & set(refused))
    assert len(audited) >= len(refused)
