"""Engines: start, stop, restart, emergency stop, status, health, logs, containers, config."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from app.api.deps import caller, control_caller, workbench
from app.api.errors import ApiProblem
from app.api.models import (
    Containers,
    EmergencyStop,
    EmergencyTierAnswer,
    EngineConfigChange,
    EngineLogs,
    Engines,
    EngineSession,
    Health,
    OneEngine,
    Removed,
    RestartEngine,
    StartEngine,
)
from app.api.routes import READ, declare
from services.identity.principal import Principal

MAX_LOG_LINES = 10_000

router = APIRouter(prefix="/api/v1/nautilus/engine", tags=["engines"])


@router.post("/start", status_code=201, response_model=OneEngine,
             summary="Start a paper, sandbox or live engine",
             **declare("engine.start", 409, 422, 503))
def start(body: StartEngine, wb=Depends(workbench),
          principal: Principal = Depends(control_caller)):
    """Validates the template parameters, starts a container and answers in state Starting.
    Live engines need `confirm` with the engine's name and the live_trader role."""
    info = wb.engines.start(body.template, body.parameters, principal=principal, name=body.name,
                            confirm=body.confirm)
    return {"engine": info.to_json()}


@router.post("/stop", status_code=202, response_model=OneEngine,
             summary="Stop an engine gracefully", **declare("engine.stop", 404, 409, 503))
def stop(body: EngineSession, wb=Depends(workbench),
         principal: Principal = Depends(control_caller)):
    """SIGTERM: the node stops its strategies and exits; answers in state Stopping."""
    return {"engine": wb.engines.stop(body.session_id, principal=principal).to_json()}


@router.post("/restart", status_code=202, response_model=OneEngine,
             summary="Restart an engine", **declare("engine.restart", 404, 409, 422, 503))
def restart(body: RestartEngine, wb=Depends(workbench),
            principal: Principal = Depends(control_caller)):
    """Stops the engine if active and starts a new session with the same configuration (the
    answer is the new session). Live engines need `confirm`."""
    info = wb.engines.restart(body.session_id, principal=principal, confirm=body.confirm)
    return {"engine": info.to_json()}


@router.post("/emergency-stop", response_model=OneEngine | Engines | EmergencyTierAnswer,
             summary="Emergency stop, tier by tier: halt, cancel, flatten, or kill (default)",
             **declare("engine.emergency_stop", 404, 409, 422, 503, 504))
def emergency_stop(body: EmergencyStop, wb=Depends(workbench),
                   principal: Principal = Depends(caller)):
    """kill: SIGKILL from any state, never refused for the engine's state. halt (no new
    orders), cancel (every open order) and flatten (cancel and close every position) go into
    running engines. Never rate-limited."""
    if not body.all and body.session_id is None:
        raise ApiProblem(422, "Give the session_id of the engine to stop, or \"all\": true.")
    if body.tier == "kill":
        if body.all:
            return {"engines": [e.to_json() for e in
                                wb.commands.emergency_all("kill", principal=principal)]}
        return {"engine": wb.commands.emergency(body.session_id, "kill",
                                                principal=principal).to_json()}
    results = (wb.commands.emergency_all(body.tier, principal=principal) if body.all
               else [wb.commands.emergency(body.session_id, body.tier, principal=principal)])
    return {"results": [{"error": str(r)} if isinstance(r, Exception) else r.to_json()
                        for r in results]}


@router.get("/status", response_model=OneEngine | Engines, summary="Engine status",
            **declare(READ, 404))
def status(session_id: str | None = Query(None, pattern=r"^[0-9a-f]{12}$"),
           wb=Depends(workbench), _principal: Principal = Depends(caller)):
    """One engine with `session_id`, else every session (newest first)."""
    if session_id:
        return {"engine": wb.engines.get(session_id).to_json()}
    return {"engines": [i.to_json() for i in wb.engines.list_sessions()]}


@router.get("/health", response_model=Health, summary="Docker and monitor health",
            **declare(READ))
def health(request: Request, wb=Depends(workbench), _principal: Principal = Depends(caller)):
    """Answers 200 also when Docker is unreachable: the answer is the health report."""
    report = wb.engines.health()
    monitor = request.app.state.monitor
    if monitor is not None:
        state = monitor.state
        report["monitor"] = {"docker_reachable": state.docker_reachable, "detail": state.detail,
                             "failures": state.failures, "next_poll_in": state.next_poll_in,
                             "followed": state.followed}
    return report


@router.get("/logs", response_model=EngineLogs, summary="An engine's log", **declare(READ, 404))
def logs(session_id: str = Query(pattern=r"^[0-9a-f]{12}$"),
         tail: int = Query(200, ge=0, le=MAX_LOG_LINES, description="Newest lines; 0: all."),
         search: str | None = Query(None, max_length=200,
                                    description="Only lines containing this (any case)."),
         wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"session_id": session_id, "lines": wb.engines.logs(session_id, tail, search)}


@router.get("/containers", response_model=Containers,
            summary="This workbench's engine containers on the Docker host", **declare(READ, 503))
def containers(wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"containers": wb.engines.containers()}


@router.delete("/containers/cleanup", response_model=Removed,
               summary="Remove exited engine containers (their logs stay)",
               **declare("engine.cleanup", 503))
def cleanup(wb=Depends(workbench), principal: Principal = Depends(control_caller)):
    return {"removed": wb.engines.cleanup(principal=principal)}


@router.put("/config", response_model=OneEngine,
            summary="Change a stopped engine's configuration",
            **declare("engine.update_config", 404, 409, 422))
def config(body: EngineConfigChange, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    """Validates the merged parameters; the next restart uses them."""
    info = wb.engines.update_config(body.session_id, body.parameters, principal=principal)
    return {"engine": info.to_json()}
