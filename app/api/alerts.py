"""Alerts and the seed's metrics endpoints: ``GET /api/v1/alerts``, the alert rules, and
``POST/GET /api/v1/metrics``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query

from app.api.deps import caller, control_caller, workbench
from app.api.models import (
    AlertRuleChange,
    AlertRuleOut,
    AlertRules,
    Alerts,
    MetricIn,
    MetricOut,
    Metrics,
)
from app.api.routes import READ, declare
from services.identity.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["alerts and metrics"])
RULE = Path(pattern=r"^[a-z_]{1,64}$", description="Rule name (GET /api/v1/alerts/rules).")


@router.get("/alerts", response_model=Alerts, summary="Alerts, newest first", **declare(READ))
def alerts(limit: int = Query(100, ge=1, le=1000),
           session_id: str | None = Query(None, pattern=r"^[0-9a-f]{12}$"),
           wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"alerts": [a.to_json() for a in wb.alerts.list(limit=limit, session_id=session_id)]}


@router.get("/alerts/rules", response_model=AlertRules, summary="Alert rules and channels",
            **declare(READ))
def rules(wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"rules": [r.to_json() for r in wb.alerts.rules()], "channels": wb.alerts.channels()}


@router.put("/alerts/rules/{name}", response_model=AlertRuleOut,
            summary="Change an alert rule", **declare("alerts.manage", 422))
def change_rule(body: AlertRuleChange, name: str = RULE, wb=Depends(workbench),
                principal: Principal = Depends(control_caller)):
    return wb.alerts.set_rule(name, enabled=body.enabled, threshold=body.threshold,
                              cooldown_s=body.cooldown_s, channels=body.channels,
                              principal=principal).to_json()


@router.post("/metrics", status_code=201, response_model=MetricOut,
             summary="Record a metric sample", **declare("metrics.write", 422))
def record(body: MetricIn, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    return wb.metrics.record(body.metric_name, body.value, body.source, body.timestamp,
                             principal=principal).to_json()


@router.get("/metrics", response_model=Metrics, summary="Metric samples by name",
            **declare(READ, 422))
def query(name: str = Query(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$",
                            examples=["nautilus.engine.cpu_usage"]),
          since: datetime | None = Query(None, description="ISO 8601; default: all kept."),
          limit: int = Query(10_000, ge=1, le=100_000),
          wb=Depends(workbench), _principal: Principal = Depends(caller)):
    """Recorded samples and the engines' own (source ``engine:<session id>``), oldest first."""
    return {"metrics": [p.to_json() for p in wb.metrics.query(name, since, limit)]}
