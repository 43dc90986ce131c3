"""The REST API under /api/v1, on FastAPI: typed models validate requests and generate the
OpenAPI document (/api/v1/openapi.json). Routes are plain functions run in FastAPI's thread
pool, so a slow Docker or database call never stalls the pages' event loop. Every route calls
the same services as the UI and the CLI with the principal of the request's bearer token; the
service layer authorises and audits."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import (
    alerts,
    backtests,
    engine_ops,
    engines,
    identity,
    messagebus,
    pipeline,
    strategies,
)
from app.api.errors import install_error_handlers
from app.api.models import Live
from app.api.routes import PUBLIC, declare

API_ROOT = "/api/v1"
OPENAPI_URL = f"{API_ROOT}/openapi.json"

health = APIRouter(prefix=API_ROOT, tags=["health"])


@health.get("/health/live", response_model=Live, summary="Liveness (no token needed)",
            **declare(PUBLIC))
def live():
    return {"status": "ok"}


ROUTERS = (health, identity.router, engines.router, engine_ops.router, backtests.router,
           strategies.router, alerts.router, messagebus.router,
           pipeline.router)

__all__ = ["API_ROOT", "OPENAPI_URL", "ROUTERS", "install_error_handlers"]
