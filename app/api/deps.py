"""What routes depend on: the workbench, the caller's identity (bearer token) and the control
rate limit."""

from __future__ import annotations

import os
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app.api.errors import ApiProblem
from services.errors import AuthenticationError
from services.identity.principal import Principal

# Control calls (state changes) per token; the emergency stop is never limited.
CONTROL_RATE = parse(os.environ.get("WORKBENCH_API_CONTROL_RATE", "60/minute"))
_limiter = MovingWindowRateLimiter(MemoryStorage())
_bearer = HTTPBearer(auto_error=False, description="A personal API token "
                     "(nautilus-workbench tokens create USER, or POST /api/v1/auth/token).")


def workbench(request: Request):
    return request.app.state.workbench


def caller(request: Request,
           credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """The user of the request's bearer token; 401 without one or with a bad one. Any
    X-Workbench-Actor header is ignored: identity comes from the token only."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(401, "Send an API token: Authorization: Bearer <token> (create one with "
                              "'nautilus-workbench tokens create USER' or POST /api/v1/auth/token).")
    try:
        principal = request.app.state.workbench.tokens.authenticate(credentials.credentials)
    except AuthenticationError as e:
        raise ApiProblem(401, str(e)) from None
    request.state.principal = principal
    return principal


def control_caller(principal: Principal = Depends(caller)) -> Principal:
    """``caller`` for state-changing routes, at most CONTROL_RATE calls per token."""
    key = principal.via or principal.name
    if not _limiter.hit(CONTROL_RATE, "control", key):
        reset, _remaining = _limiter.get_window_stats(CONTROL_RATE, "control", key)
        wait = max(1, int(reset - time.time()) + 1)
        raise ApiProblem(429, f"Too many control requests with this token (at most {CONTROL_RATE}"
                              f"); retry in {wait} s.", headers={"Retry-After": str(wait)})
    return principal
