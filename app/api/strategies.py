"""Strategy templates: list, read one, validate parameters."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, Path

from app.api.deps import caller, workbench
from app.api.models import Templates, TemplateSummary, ValidateStrategy, Validation
from app.api.routes import READ, declare
from services.errors import NotFound, ValidationError
from services.identity.principal import Principal

router = APIRouter(prefix="/api/v1/nautilus/engine/strategies", tags=["strategies"])


def _summary(s) -> dict:
    return {k: v for k, v in dataclasses.asdict(s).items() if k != "path"}


@router.get("/templates", response_model=Templates, summary="Strategy and engine templates",
            **declare(READ))
def templates(wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"templates": [_summary(s) for s in wb.templates.summaries()]}


@router.get("/templates/{name}", response_model=TemplateSummary, summary="One template",
            **declare(READ, 404))
def template(name: str = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$"), wb=Depends(workbench),
             _principal: Principal = Depends(caller)):
    for summary in wb.templates.summaries():
        if summary.name == name:
            return _summary(summary)
    raise NotFound(f"There is no template {name!r}; list them with GET "
                   "/api/v1/nautilus/engine/strategies/templates.")


@router.post("/validate", response_model=Validation,
             summary="Check strategy parameters against their template", **declare(READ, 404))
def validate(body: ValidateStrategy, wb=Depends(workbench),
             _principal: Principal = Depends(caller)):
    """Answers 200 with `valid` and every problem; an unknown template is 404."""
    try:
        template = wb.templates.strategy(body.strategy)
    except ValidationError as e:
        raise NotFound(str(e)) from None
    try:
        values = template.validate_parameters(body.parameters, body.instrument_class)
    except ValidationError as e:
        return {"valid": False, "problems": e.problems or [str(e)]}
    return {"valid": True, "problems": [],
            "parameters": {k: template.parameters[k].to_json_value(v) for k, v in values.items()}}
