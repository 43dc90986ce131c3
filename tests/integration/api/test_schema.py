"""schemathesis against the served OpenAPI document: for generated requests to every route, no
5xx, and every answer matches its documented status, content type and schema.

The server has an empty catalog and no Docker, so no generated request can start a backtest
or a container; the token holds every role, so requests get past authorisation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.identity.roles import ROLES
from tests.integration.api.conftest import PASSWORD, serve, shutdown

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


def no_unexpected_server_error(ctx, response, case) -> bool | None:
    """No 5xx, except the documented 503 of a route whose backend (Docker, a Dask cluster) is
    unavailable: that answer is the API working, and its body must say which and what to do."""
    status = response.status_code
    if status < 500:
        return None
    documented = str(status) in case.operation.definition.raw.get("responses", {})
    if status == 503 and documented and any(
            backend in response.json()["error"] for backend in ("Docker", "Dask")):
        return None
    raise AssertionError(f"{case.method} {case.path} answered {status}: {response.text}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, new_database_url):
    home = tmp_path_factory.mktemp("api-schema")
    (home / "empty-catalog").mkdir()
    app = serve(home, home / "empty-catalog", {"DOCKER_HOST": "unix:///nonexistent/docker.sock",
                                               "WORKBENCH_API_CONTROL_RATE": "100000/minute"},
                database_url=new_database_url())
    wb = app.workbench()
    try:
        wb.users.add("everything", list(ROLES), PASSWORD)
        app.tokens["all"] = wb.tokens.create("schemathesis", username="everything")[1]
    finally:
        wb.database.dispose()
    yield app
    shutdown(app)


def _document() -> dict:
    """The OpenAPI document the server serves, built from the same routers (schemathesis needs
    it when the module loads; the test checks it equals the served one)."""
    from fastapi import FastAPI

    from app.api import OPENAPI_URL, ROUTERS
    from app.server import API_DESCRIPTION

    app = FastAPI(title="Nautilus Workbench API", version="1", openapi_url=OPENAPI_URL,
                  description=API_DESCRIPTION)
    for router in ROUTERS:
        app.include_router(router)
    return app.openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_document_is_the_one_the_server_serves(served):
    assert served.request("get", "/api/v1/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_every_route_answers_within_its_schema(case, served):
    case.call_and_validate(
        base_url=served.url, headers={"Authorization": f"Bearer {served.tokens['all']}"},
        checks=[no_unexpected_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])
