"""The strategy pipeline: versions, diffs, promotion requests and decisions, deployments,
rollbacks, rollout steps and drift (/api/v1/strategies/...).

Every route calls the same services as the Pipeline page and the CLI with the principal of the
request's token; the service layer authorises (roles and four-eyes rules) and audits.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from app.api.deps import caller, control_caller, workbench
from app.api.errors import ApiProblem
from app.api.pipeline_models import (
    CreateVersion,
    Decide,
    Deploy,
    Deployment,
    Deployments,
    Drift,
    Promotion,
    Promotions,
    Replace,
    RequestPromotion,
    Version,
    VersionDiff,
    VersionRef,
    Versions,
)
from app.api.routes import READ, declare
from services.identity.principal import Principal

router = APIRouter(prefix="/api/v1/strategies", tags=["strategy pipeline"])
REQUEST_ID = Path(pattern=r"^pr-[0-9a-f]{10}$", description="Promotion request id.")
DEPLOYMENT_ID = Path(pattern=r"^dep-[0-9a-f]{10}$", description="Deployment id.")
VERSION_ID = Path(pattern=r"^[0-9a-fA-F]{6,64}$", description="Version id or a unique prefix.")


def _version(info, status: str = "ok") -> dict:
    return {**info.to_json(), "status": status}


def _deployment(info) -> dict:
    return info.to_json()


# -- versions -----------------------------------------------------------------------------------
@router.get("/versions", response_model=Versions, summary="Strategy versions, newest first",
            **declare(READ))
def versions(strategy: str | None = Query(None, pattern=r"^[A-Za-z0-9_-]{1,64}$"),
             wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"versions": [_version(v) for v in wb.pipeline.versions.list(strategy=strategy)]}


@router.post("/versions", status_code=201, response_model=Version,
             summary="Create the version of a completed run, or of a template",
             **declare("strategy.version", 404, 409, 422))
def create_version(body: CreateVersion, wb=Depends(workbench),
                   principal: Principal = Depends(control_caller)):
    """The same content gives the same version: `status` is `created` or `exists`."""
    from services.backtest import BacktestSpec, VenueSettings

    versions = wb.pipeline.versions
    if body.run_id and not (body.strategy or body.bar_type):
        new = versions.create_from_run(body.run_id, note=body.note, principal=principal)
    elif body.strategy and body.bar_type and not body.run_id:
        spec = BacktestSpec(strategy=body.strategy, bar_type=body.bar_type,
                            parameters=body.parameters,
                            venue=VenueSettings(**body.venue.model_dump()))
        new = versions.create_from_template(spec, note=body.note, principal=principal)
    else:
        raise ApiProblem(422, "Give run_id, or strategy and bar_type (not both).")
    return _version(new.version, "created" if new.created else "exists")


@router.get("/versions/{version_id}", response_model=Version, summary="One version",
            **declare(READ, 404, 422))
def version(version_id: str = VERSION_ID, wb=Depends(workbench),
            _principal: Principal = Depends(caller)):
    return _version(wb.pipeline.versions.get(version_id))


@router.get("/diff", response_model=VersionDiff, summary="What differs between two versions",
            **declare(READ, 404, 422))
def diff(left: VersionRef = Query(...), right: VersionRef = Query(...), wb=Depends(workbench),
         _principal: Principal = Depends(caller)):
    result = wb.pipeline.versions.diff(left, right)
    return {**result.to_json(), "status": "identical" if not result.differences
            else "different"}


# -- promotions ---------------------------------------------------------------------------------
@router.get("/promotions", response_model=Promotions, summary="Promotion requests",
            **declare(READ))
def promotions(wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"promotions": [p.to_json() for p in wb.pipeline.promotions.list()]}


@router.post("/promotions", status_code=201, response_model=Promotion,
             summary="Ask to promote a version to paper or live",
             **declare("strategy.promote", 404, 409, 422))
def request_promotion(body: RequestPromotion, wb=Depends(workbench),
                      principal: Principal = Depends(control_caller)):
    """Created while gates fail (the answer's `gates` say which); refused (409) for a version
    with no completed backtest."""
    return wb.pipeline.promotions.request(body.version_id, body.stage,
                                          risk_limits=body.risk_limits, note=body.note,
                                          principal=principal).to_json()


@router.get("/promotions/{request_id}", response_model=Promotion, summary="One request",
            **declare(READ, 404))
def promotion(request_id: str = REQUEST_ID, wb=Depends(workbench),
              _principal: Principal = Depends(caller)):
    return wb.pipeline.promotions.get(request_id).to_json()


@router.post("/promotions/{request_id}/approve", response_model=Promotion,
             summary="Approve a request", **declare("strategy.approve_paper", 404, 409))
def approve(body: Decide, request_id: str = REQUEST_ID, wb=Depends(workbench),
            principal: Principal = Depends(control_caller)):
    """Paper: one approval by a trader or approver. Live: two approvers, neither the author
    (`strategy.approve_live`). Refused while gates fail, twice by one person, or when another
    decision came first."""
    return wb.pipeline.promotions.approve(request_id, comment=body.comment,
                                          principal=principal).to_json()


@router.post("/promotions/{request_id}/reject", response_model=Promotion,
             summary="Reject a request (with a comment)",
             **declare("strategy.approve_paper", 404, 409, 422))
def reject(body: Decide, request_id: str = REQUEST_ID, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    return wb.pipeline.promotions.reject(request_id, comment=body.comment,
                                         principal=principal).to_json()


# -- deployments --------------------------------------------------------------------------------
@router.get("/deployments", response_model=Deployments, summary="Deployments, newest first",
            **declare(READ))
def deployments(wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"deployments": [_deployment(d) for d in wb.pipeline.deployments.list()]}


@router.post("/deployments", status_code=201, response_model=Deployment,
             summary="Deploy an approved version to a paper or live engine",
             **declare("strategy.deploy", 404, 409, 422, 503))
def deploy(body: Deploy, wb=Depends(workbench), principal: Principal = Depends(control_caller)):
    """Answers with the deployment while its engine starts. Live needs `confirm` with the
    engine's name and the live_trader role."""
    from services.pipeline import DeployOptions

    options = DeployOptions(fraction=body.fraction, replay_start=body.replay_start,
                            replay_speed=body.replay_speed)
    return _deployment(wb.pipeline.deployments.deploy(
        body.version_id, body.stage, confirm=body.confirm, options=options,
        principal=principal))


@router.get("/deployments/{deployment_id}", response_model=Deployment,
            summary="One deployment", **declare(READ, 404))
def deployment(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
               _principal: Principal = Depends(caller)):
    return _deployment(wb.pipeline.deployments.get(deployment_id))


@router.post("/deployments/{deployment_id}/stop", response_model=Deployment,
             summary="Stop a deployment's engine", **declare("strategy.deploy", 404, 409, 503))
def stop(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
         principal: Principal = Depends(control_caller)):
    return _deployment(wb.pipeline.deployments.stop(deployment_id, principal=principal))


@router.post("/deployments/{deployment_id}/emergency-stop", response_model=Deployment,
             summary="Kill a deployment's engine now",
             **declare("strategy.deploy", 404, 503))
def emergency_stop(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
                   principal: Principal = Depends(caller)):
    """From any state; never rate-limited."""
    return _deployment(wb.pipeline.deployments.emergency_stop(deployment_id,
                                                              principal=principal))


@router.post("/deployments/{deployment_id}/rollback", status_code=201, response_model=Deployment,
             summary="Stop a deployment and deploy the version approved before it",
             **declare("strategy.deploy", 404, 409, 422, 503))
def rollback(body: Replace, deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
             principal: Principal = Depends(control_caller)):
    return _deployment(wb.pipeline.deployments.rollback(deployment_id, confirm=body.confirm,
                                                        principal=principal))


@router.post("/deployments/{deployment_id}/rollout", status_code=201,
             response_model=Deployment,
             summary="Step a deployment up to the rollout's next capital fraction",
             **declare("strategy.rollout", 404, 409, 422, 503))
def rollout(body: Replace, deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
            principal: Principal = Depends(control_caller)):
    return _deployment(wb.pipeline.deployments.step_up(deployment_id, confirm=body.confirm,
                                                       principal=principal))


@router.post("/deployments/{deployment_id}/drift", response_model=Drift,
             summary="Compare a deployment with a backtest of the window it traded",
             **declare("strategy.drift", 404, 409, 422))
def compute_drift(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
                  principal: Principal = Depends(control_caller)):
    """Re-runs the version as a backtest of the engine's window (through the queue) and
    answers when it is compared; the summary is kept for the live gate."""
    report = wb.pipeline.drift.compute(deployment_id, principal=principal)
    return {**report.summary(), "status": "within_bounds" if report.within_bounds
            else "out_of_bounds"}


@router.get("/deployments/{deployment_id}/drift", response_model=Drift,
            summary="The latest drift of a deployment", **declare(READ, 404, 409))
def drift(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
          _principal: Principal = Depends(caller)):
    summary = wb.pipeline.deployments.get(deployment_id).drift
    if not summary:
        raise ApiProblem(409, f"No drift computed yet for deployment {deployment_id}; POST "
                              f"to /api/v1/strategies/deployments/{deployment_id}/drift.")
    return {**summary, "status": "within_bounds" if summary["within_bounds"]
            else "out_of_bounds"}


_REPORT = declare(READ, 404, 409)
# A plain Response class: errors are then documented as the JSON they are, the report as HTML.
_REPORT["responses"][200] = {"description": "The report",
                             "content": {"text/html": {"schema": {"type": "string"}}}}


@router.get("/deployments/{deployment_id}/drift/report", response_class=Response,
            summary="The latest drift as a standalone HTML report", **_REPORT)
def drift_report(deployment_id: str = DEPLOYMENT_ID, wb=Depends(workbench),
                 _principal: Principal = Depends(caller)):
    from components.drift_report import drift_report_html

    return HTMLResponse(drift_report_html(wb.pipeline.drift.report(deployment_id)))
