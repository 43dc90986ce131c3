"""How the API answers problems: JSON ``{"error": ..., "problems": [...]}`` with a status by the
kind of error, never a traceback or a bare 500 page."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.web.access import MAX_API_BODY, BodyTooLarge
from services.errors import (
    AuthenticationError,
    CatalogError,
    CommandRefused,
    DockerUnavailable,
    EngineError,
    EngineStateConflict,
    EngineUnresponsive,
    NotFound,
    PermissionDenied,
    RuntimeUnavailableError,
    ValidationError,
    WorkbenchError,
)

log = logging.getLogger("nautilus_workbench.api")

# Most specific first: refusals 401/403, unknown ids 404, the state does not allow it 409,
# invalid input 422 (an engine refusing a command: a bad order, a risk-engine denial), a backend
# the server cannot use now 503, an engine that did not answer in time 504.
STATUS_BY_ERROR: tuple[tuple[type[WorkbenchError], int], ...] = (
    (AuthenticationError, 401), (PermissionDenied, 403), (NotFound, 404),
    (EngineStateConflict, 409), (ValidationError, 422), (CatalogError, 422),
    (CommandRefused, 422), (DockerUnavailable, 503), (EngineUnresponsive, 504),
    (RuntimeUnavailableError, 503), (EngineError, 409), (WorkbenchError, 409),
)


class ApiProblem(Exception):
    """A refusal with its HTTP status, raised by routes and dependencies."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.headers = headers


def status_of(error: WorkbenchError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


def problem(status: int, message: str, problems: list[str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"error": message}
    if problems is not None:
        body["problems"] = problems
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store",
                                                          **(headers or {})})


def _field(location: tuple) -> str:
    return ".".join(str(p) for p in location if p not in ("body", "query", "path")) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(_request: Request, error: ApiProblem):
        return problem(error.status, str(error), error.problems, error.headers)

    @app.exception_handler(WorkbenchError)
    async def _workbench_error(_request: Request, error: WorkbenchError):
        if isinstance(error, ValidationError):
            return problem(422, error.summary, error.problems)
        return problem(status_of(error), str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError):
        problems = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in error.errors()]
        return problem(422, "The request is not valid", problems)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, _error: BodyTooLarge):
        return problem(413, f"The request body is larger than {MAX_API_BODY // 1024} KiB.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 404:
            return problem(404, f"No API endpoint {request.url.path}; the endpoints are listed "
                                "in /api/v1/openapi.json.")
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            return problem(400, "The request body is not valid JSON (or is nested too deeply).")
        if error.status_code == 405:
            return problem(405, f"{request.method} is not allowed on {request.url.path}; see "
                                "/api/v1/openapi.json.")
        return problem(error.status_code, str(error.detail))

    @app.exception_handler(RecursionError)
    async def _too_deep(_request: Request, _error: RecursionError):
        return problem(422, "The request body is nested too deeply.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error; the details are in the server log.")
