"""REST API for engines, served by the app's own Tornado server under /api/v1/.

JSON in and out. Every endpoint calls the same EngineService methods as the UI and the CLI, so
roles, the typed confirmation for live engines and the audit log apply the same way. Errors are
JSON ``{"error": message}`` (plus ``"problems"`` for invalid configurations) with a status that
says what kind of problem it is (see ``status_of``). The caller is named by the
``X-Workbench-Actor`` header ("local", the local operator, when absent) until logins exist.

Service calls run in a thread so a slow Docker call never stalls the pages' event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import tornado.web

from services import PermissionDenied, ValidationError, Workbench, WorkbenchError
from services.errors import DockerUnavailable, EngineError, EngineNotFound, EngineStateConflict

log = logging.getLogger("nautilus_workbench.api")

API_ROOT = "/api/v1"
ENGINE_ROOT = f"{API_ROOT}/nautilus/engine"
ACTOR_HEADER = "X-Workbench-Actor"
DEFAULT_ACTOR = "local"
MAX_LOG_LINES = 10_000


class ApiError(Exception):
    """A refusal with its HTTP status, raised inside handlers."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


def status_of(error: WorkbenchError) -> int:
    """The HTTP status for a service error, by its type: refusals 403, invalid input 422, an
    unknown session 404, an action the engine's state does not allow 409 (double start, stop of
    a stopped engine, config change of a running one), Docker unreachable or the engine image
    missing 503 (the server cannot do it now)."""
    for kind, status in ((PermissionDenied, 403), (ValidationError, 422), (EngineNotFound, 404),
                         (EngineStateConflict, 409), (DockerUnavailable, 503)):
        if isinstance(error, kind):
            return status
    return 409 if isinstance(error, EngineError) else 500


class _JsonHandler(tornado.web.RequestHandler):
    """Shared plumbing: JSON bodies, the actor, error mapping, service calls off the loop."""

    def initialize(self, workbench: Workbench, monitor=None) -> None:
        self.workbench = workbench
        self.monitor = monitor

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    @property
    def actor(self) -> str:
        return (self.request.headers.get(ACTOR_HEADER) or DEFAULT_ACTOR).strip() or DEFAULT_ACTOR

    def body(self) -> dict:
        if not self.request.body:
            raise ApiError(400, "The request needs a JSON object body.")
        try:
            value = json.loads(self.request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"The body is not valid JSON: {e}.") from None
        if not isinstance(value, dict):
            raise ApiError(400, f"The body must be a JSON object, was {type(value).__name__}.")
        return value

    @staticmethod
    def field(body: dict, name: str, kind: type = str, required: bool = True) -> Any:
        value = body.get(name)
        if value is None:
            if required:
                raise ApiError(400, f"Missing field {name!r} in the JSON body.")
            return None
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ApiError(400, f"Field {name!r} must be a {_kind_name(kind)}, was "
                                f"{json.dumps(value)}.")
        return value

    def query(self, name: str, required: bool = False) -> str | None:
        value = self.get_query_argument(name, default=None)
        if required and not value:
            raise ApiError(400, f"Missing query parameter {name!r}.")
        return value

    async def call(self, function: Callable, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    async def known_session(self, session_id: str):
        """The session's EngineInfo, or 404."""
        try:
            return await self.call(self.workbench.engines.get, session_id)
        except EngineError as e:
            raise ApiError(404, str(e)) from None

    def send(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, default=str))

    async def _guarded(self, work: Callable) -> None:
        try:
            await work()
        except ApiError as e:
            self.send(_error_payload(str(e), e.problems), e.status)
        except ValidationError as e:
            self.send(_error_payload(e.summary, e.problems), 422)
        except WorkbenchError as e:
            self.send(_error_payload(str(e)), status_of(e))

    def write_error(self, status_code: int, **kwargs) -> None:
        # Tornado's own errors (405, unexpected exceptions) as JSON too, without a traceback.
        reason = {405: f"{self.request.method} is not allowed here; see {API_ROOT}/openapi.json.",
                  500: "Internal error; the details are in the server log."}.get(
            status_code, self._reason)
        self.finish(json.dumps(_error_payload(reason)))


def _kind_name(kind: type) -> str:
    return {str: "string", dict: "JSON object", int: "whole number", bool: "boolean"}.get(
        kind, kind.__name__)


def _error_payload(message: str, problems: list[str] | None = None) -> dict:
    payload: dict[str, Any] = {"error": message}
    if problems is not None:
        payload["problems"] = problems
    return payload


class StartHandler(_JsonHandler):
    async def post(self) -> None:
        async def work():
            body = self.body()
            template = self.field(body, "template")
            parameters = self.field(body, "parameters", dict, required=False) or {}
            name = self.field(body, "name", required=False)
            confirm = self.field(body, "confirm", required=False)
            info = await self.call(self.workbench.engines.start, template, parameters,
                                   self.actor, name, confirm)
            self.send({"engine": info.to_json()}, 201)
        await self._guarded(work)


class StopHandler(_JsonHandler):
    async def post(self) -> None:
        async def work():
            session_id = self.field(self.body(), "session_id")
            await self.known_session(session_id)
            info = await self.call(self.workbench.engines.stop, session_id, self.actor)
            self.send({"engine": info.to_json()}, 202)
        await self._guarded(work)


class RestartHandler(_JsonHandler):
    async def post(self) -> None:
        async def work():
            body = self.body()
            session_id = self.field(body, "session_id")
            confirm = self.field(body, "confirm", required=False)
            await self.known_session(session_id)
            info = await self.call(self.workbench.engines.restart, session_id, self.actor,
                                   confirm)
            self.send({"engine": info.to_json()}, 202)
        await self._guarded(work)


class EmergencyStopHandler(_JsonHandler):
    async def post(self) -> None:
        async def work():
            body = self.body()
            if self.field(body, "all", bool, required=False):
                killed = await self.call(self.workbench.engines.emergency_stop_all, self.actor)
                self.send({"engines": [e.to_json() for e in killed]})
                return
            session_id = body.get("session_id")
            if session_id is None:
                raise ApiError(400, "Give 'session_id' of the engine to kill, or \"all\": true.")
            session_id = self.field(body, "session_id")
            await self.known_session(session_id)
            info = await self.call(self.workbench.engines.emergency_stop, session_id, self.actor)
            self.send({"engine": info.to_json()})
        await self._guarded(work)


class StatusHandler(_JsonHandler):
    async def get(self) -> None:
        async def work():
            session_id = self.query("session_id")
            if session_id:
                info = await self.known_session(session_id)
                self.send({"engine": info.to_json()})
            else:
                infos = await self.call(self.workbench.engines.list_sessions)
                self.send({"engines": [i.to_json() for i in infos]})
        await self._guarded(work)


class HealthHandler(_JsonHandler):
    async def get(self) -> None:
        async def work():
            health = await self.call(self.workbench.engines.health)
            if self.monitor is not None:
                state = self.monitor.state
                health["monitor"] = {"docker_reachable": state.docker_reachable,
                                     "detail": state.detail, "failures": state.failures,
                                     "next_poll_in": state.next_poll_in,
                                     "followed": state.followed}
            # Health answers 200 when Docker is down: the answer *is* the health report.
            self.send(health)
        await self._guarded(work)


class LogsHandler(_JsonHandler):
    async def get(self) -> None:
        async def work():
            session_id = self.query("session_id", required=True)
            tail_text = self.query("tail") or "200"
            try:
                tail = int(tail_text)
            except ValueError:
                raise ApiError(400, f"Query parameter 'tail' must be a whole number, was "
                                    f"{tail_text!r}.") from None
            if not 0 <= tail <= MAX_LOG_LINES:
                raise ApiError(400, f"Query parameter 'tail' must be 0 to {MAX_LOG_LINES} "
                                    f"(0: every line), was {tail}.")
            search = self.query("search")
            await self.known_session(session_id)
            lines = await self.call(self.workbench.engines.logs, session_id, tail, search)
            self.send({"session_id": session_id, "lines": lines})
        await self._guarded(work)


class ContainersHandler(_JsonHandler):
    async def get(self) -> None:
        async def work():
            containers = await self.call(self.workbench.engines.containers)
            self.send({"containers": containers})
        await self._guarded(work)


class CleanupHandler(_JsonHandler):
    async def delete(self) -> None:
        async def work():
            removed = await self.call(self.workbench.engines.cleanup, self.actor)
            self.send({"removed": removed})
        await self._guarded(work)


class ConfigHandler(_JsonHandler):
    async def put(self) -> None:
        async def work():
            body = self.body()
            session_id = self.field(body, "session_id")
            parameters = self.field(body, "parameters", dict)
            await self.known_session(session_id)
            info = await self.call(self.workbench.engines.update_config, session_id, parameters,
                                   self.actor)
            self.send({"engine": info.to_json()})
        await self._guarded(work)


class OpenApiHandler(_JsonHandler):
    def get(self) -> None:
        self.send(openapi_document())


class NotFoundHandler(_JsonHandler):
    def prepare(self) -> None:
        self.send(_error_payload(f"No API endpoint {self.request.path}; the endpoints are "
                                 f"listed in {API_ROOT}/openapi.json."), 404)


ROUTES = {
    "start": StartHandler, "stop": StopHandler, "restart": RestartHandler,
    "emergency-stop": EmergencyStopHandler, "status": StatusHandler, "health": HealthHandler,
    "logs": LogsHandler, "containers": ContainersHandler, "containers/cleanup": CleanupHandler,
    "config": ConfigHandler,
}


def api_patterns(workbench: Workbench, monitor=None) -> list[tuple]:
    """Tornado URL patterns of the API, for ``pn.serve(..., extra_patterns=...)``."""
    kwargs = {"workbench": workbench, "monitor": monitor}
    patterns = [(rf"{ENGINE_ROOT}/{path}/?", handler, kwargs) for path, handler in ROUTES.items()]
    patterns.append((rf"{API_ROOT}/openapi\.json", OpenApiHandler, kwargs))
    patterns.append((rf"{API_ROOT}(/.*)?", NotFoundHandler, kwargs))
    return patterns


# -- OpenAPI -----------------------------------------------------------------------------------
def _json_body(schema: dict, example: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema,
                                                               "example": example}}}


def _responses(ok: int, ok_description: str, ok_schema: dict, *errors: int) -> dict:
    reasons = {
        400: "Malformed JSON, a missing field or a query parameter of the wrong type.",
        403: "The actor lacks the role, or a live engine was not confirmed with its name.",
        404: "No engine session with that id.",
        409: "The engine's state does not allow this (double start, stop of a stopped engine, "
             "config change of an active engine).",
        422: "The configuration is invalid; `problems` lists every problem by field.",
        503: "The Docker daemon is unreachable, or the engine image is not built.",
    }
    responses = {str(ok): {"description": ok_description,
                           "content": {"application/json": {"schema": ok_schema}}}}
    for code in errors:
        schema = {"$ref": "#/components/schemas/ValidationProblem" if code == 422
                  else "#/components/schemas/Error"}
        responses[str(code)] = {"description": reasons[code],
                                "content": {"application/json": {"schema": schema}}}
    return responses


def openapi_document() -> dict:
    """The OpenAPI 3 description of every endpoint."""
    engine = {"$ref": "#/components/schemas/Engine"}
    one = {"type": "object", "properties": {"engine": engine}, "required": ["engine"]}
    many = {"type": "object", "properties": {"engines": {"type": "array", "items": engine}},
            "required": ["engines"]}
    session = {"type": "string", "description": "Engine session id (12 hex digits)."}
    actor = {"name": ACTOR_HEADER, "in": "header", "required": False,
             "schema": {"type": "string", "default": DEFAULT_ACTOR},
             "description": "Who acts (recorded in the audit log; roles come from "
                            "WORKBENCH_ROLES). Until logins exist, the header is trusted."}
    session_query = {"name": "session_id", "in": "query", "schema": session}

    def op(summary: str, description: str, responses: dict, body: dict | None = None,
           parameters: list | None = None) -> dict:
        operation = {"summary": summary, "description": description,
                     "parameters": [actor, *(parameters or [])], "responses": responses}
        if body is not None:
            operation["requestBody"] = body
        return operation

    paths = {
        f"{ENGINE_ROOT}/start": {"post": op(
            "Start an engine from a template",
            "Validates the parameters, authorises the actor and creates the engine's container; "
            "answers in state Starting. Live engines need `confirm` equal to the engine's name.",
            _responses(201, "Starting.", one, 400, 403, 409, 422, 503),
            _json_body({"type": "object", "required": ["template"], "properties": {
                "template": {"type": "string", "enum": ["paper_trading", "sandbox_engine",
                                                        "live_engine"]},
                "parameters": {"type": "object", "additionalProperties": True,
                               "description": "Engine and strategy template parameters."},
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
                "confirm": {"type": "string", "description": "The engine's name (live only)."},
            }}, {"template": "paper_trading", "parameters": {"replay_speed": 600,
                                                             "fast_ema_period": 5,
                                                             "slow_ema_period": 12}}))},
        f"{ENGINE_ROOT}/stop": {"post": op(
            "Stop an engine gracefully",
            "SIGTERM: the node stops its strategies and exits; answers in state Stopping.",
            _responses(202, "Stopping.", one, 400, 403, 404, 409, 503),
            _json_body({"type": "object", "required": ["session_id"],
                        "properties": {"session_id": session}}, {"session_id": "0123456789ab"}))},
        f"{ENGINE_ROOT}/restart": {"post": op(
            "Restart an engine",
            "Stops the engine if active and starts a new session with the same configuration "
            "(the answer is the new session). Live engines need `confirm`.",
            _responses(202, "The new session, Starting.", one, 400, 403, 404, 409, 422, 503),
            _json_body({"type": "object", "required": ["session_id"], "properties": {
                "session_id": session, "confirm": {"type": "string"}}},
                {"session_id": "0123456789ab"}))},
        f"{ENGINE_ROOT}/emergency-stop": {"post": op(
            "Kill an engine now, or every active engine",
            "SIGKILL from any state; never refused for the engine's state.",
            _responses(200, "The engine (or, with all, every engine killed).",
                       {"oneOf": [one, many]}, 400, 403, 404, 503),
            _json_body({"type": "object", "properties": {"session_id": session,
                                                         "all": {"type": "boolean"}}},
                       {"all": True}))},
        f"{ENGINE_ROOT}/status": {"get": op(
            "Engine status", "One engine with `session_id`, else every session (newest first).",
            _responses(200, "The engine, or every engine.", {"oneOf": [one, many]}, 404),
            parameters=[session_query])},
        f"{ENGINE_ROOT}/health": {"get": op(
            "Docker and monitor health", "Answers 200 also when Docker is unreachable.",
            _responses(200, "Health report.", {"type": "object", "properties": {
                "docker": {"type": "string", "enum": ["reachable", "unreachable"]},
                "detail": {"type": "string"}, "image": {"type": "string"},
                "image_present": {"type": "boolean", "nullable": True},
                "active_engines": {"type": "integer"}, "monitor": {"type": "object"}}}))},
        f"{ENGINE_ROOT}/logs": {"get": op(
            "An engine's log", "The newest `tail` lines (0: all), optionally only those "
                               "containing `search` (case-insensitive).",
            _responses(200, "Log lines, oldest first.", {"type": "object", "properties": {
                "session_id": session, "lines": {"type": "array", "items": {"type": "string"}}}},
                400, 404),
            parameters=[{**session_query, "required": True},
                        {"name": "tail", "in": "query", "schema": {
                            "type": "integer", "minimum": 0, "maximum": MAX_LOG_LINES,
                            "default": 200}},
                        {"name": "search", "in": "query", "schema": {"type": "string"}}])},
        f"{ENGINE_ROOT}/containers": {"get": op(
            "Engine containers on the Docker host", "This workbench's engine containers.",
            _responses(200, "Containers.", {"type": "object", "properties": {
                "containers": {"type": "array", "items": {"type": "object"}}}}, 503))},
        f"{ENGINE_ROOT}/containers/cleanup": {"delete": op(
            "Remove exited engine containers", "Their logs stay in the workbench.",
            _responses(200, "Names of the removed containers.", {"type": "object", "properties": {
                "removed": {"type": "array", "items": {"type": "string"}}}}, 403, 503))},
        f"{ENGINE_ROOT}/config": {"put": op(
            "Change a stopped engine's configuration",
            "Validates the merged parameters; the next restart uses them.",
            _responses(200, "The engine with its new parameters.", one, 400, 404, 409, 422),
            _json_body({"type": "object", "required": ["session_id", "parameters"],
                        "properties": {"session_id": session,
                                       "parameters": {"type": "object"}}},
                       {"session_id": "0123456789ab", "parameters": {"slow_ema_period": 30}}))},
        f"{API_ROOT}/openapi.json": {"get": {
            "summary": "This document", "responses": {"200": {"description": "OpenAPI 3."}}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Nautilus Workbench API", "version": "1",
                 "description": "Control NautilusTrader paper, sandbox and live engines running "
                                "in Docker containers. Every call is authorised and audited "
                                "like the same action in the UI."},
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
            "ValidationProblem": {"type": "object", "required": ["error", "problems"],
                                  "properties": {"error": {"type": "string"}, "problems": {
                                      "type": "array", "items": {"type": "string"},
                                      "description": "One per problem, as 'field: what is "
                                                     "wrong'."}}},
            "Engine": {"type": "object", "properties": {
                "session_id": session, "name": {"type": "string"},
                "template": {"type": "string"},
                "mode": {"type": "string", "enum": ["paper", "sandbox", "live"]},
                "state": {"type": "string",
                          "enum": ["Stopped", "Starting", "Running", "Stopping", "Error"]},
                "container_name": {"type": "string"},
                "container_id": {"type": "string", "nullable": True},
                "image": {"type": "string"}, "actor": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": "string", "format": "date-time", "nullable": True},
                "stopped_at": {"type": "string", "format": "date-time", "nullable": True},
                "final_state": {"type": "string", "nullable": True},
                "exit_code": {"type": "integer", "nullable": True},
                "error": {"type": "string", "nullable": True},
                "status": {"type": "object", "description": "The engine's last snapshot: "
                           "trader_state, strategies, open_orders, orders, fills, positions, "
                           "balances, realized_pnl, unrealized_pnl."},
                "status_at": {"type": "string", "format": "date-time", "nullable": True},
                "parameters": {"type": "object"},
                "memory_limit_mb": {"type": "integer"}, "cpu_limit": {"type": "number"},
            }},
        }},
    }


__all__ = ["API_ROOT", "ENGINE_ROOT", "api_patterns", "openapi_document", "status_of"]
