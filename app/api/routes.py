"""The one route table: every API route declares who may call it, in its OpenAPI entry.

``x-workbench-access`` is ``public`` (no token), ``read`` (any signed-in user) or the name of
the service action the route performs (services.identity.roles.PERMISSIONS). The service layer
authorises that action; the role-matrix test walks this table, so a route without a declared
access cannot be added unnoticed.
"""

from __future__ import annotations

from typing import Any

from app.api.models import Error

ACCESS_KEY = "x-workbench-access"
PUBLIC, READ = "public", "read"

_ERRORS = {400: "The body is not valid JSON.", 401: "No token, or it is not valid, expired, revoked or its user disabled.",
           403: "The token's user lacks the role.", 404: "No such object.",
           409: "The object's state does not allow this.",
           413: "The body is too large.", 415: "The body is not application/json.",
           422: "The request is not valid; `problems` lists every problem.",
           429: "Too many control requests with this token; see Retry-After.",
           503: "The backend (Docker, a runtime) cannot be used now.",
           504: "The engine did not answer within 2 s (its event loop may be hung)."}


def declare(access: str, *errors: int) -> dict[str, Any]:
    """Keyword arguments of a route: its access and the error answers it documents."""
    # Any request may carry a body: the access gate answers 400/413/415 before the route runs.
    codes = set(errors) | {400, 413, 415} | ({401} if access != PUBLIC else set())
    if access not in (PUBLIC, READ):
        codes |= {403, 429}
    return {"openapi_extra": {ACCESS_KEY: access},
            "responses": {c: {"model": Error, "description": _ERRORS[c]} for c in sorted(codes)}}
