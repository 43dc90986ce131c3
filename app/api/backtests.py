"""Backtests: list, submit one or a sweep, read one with its statistics, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from app.api.deps import caller, control_caller, workbench
from app.api.models import RunDetail, Runs, SubmitBacktest, SubmitSweep, SweepSubmitted
from app.api.routes import READ, declare
from services.errors import BacktestError
from services.identity.principal import Principal
from services.timestamps import window_texts

router = APIRouter(prefix="/api/v1/nautilus/engine", tags=["backtests"])
RUN_ID = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Backtest run id.")
RUN_FIELDS = ("run_id", "status", "strategy", "instrument_id", "bar_type", "start", "end",
              "label", "parameters", "created_at", "started_at", "finished_at", "phase",
              "progress", "error", "total_return", "sharpe", "max_drawdown", "num_trades",
              "final_equity", "currency", "sweep_id", "runtime")


def _run(info) -> dict:
    return {k: getattr(info, k) for k in RUN_FIELDS}


@router.get("/backtests", response_model=Runs, summary="Recent backtest runs, newest first",
            **declare(READ))
def list_runs(limit: int = Query(100, ge=1, le=1000),
              sweep_id: str | None = Query(None, pattern=r"^[A-Za-z0-9_.-]{1,80}$"),
              wb=Depends(workbench), _principal: Principal = Depends(caller)):
    return {"runs": [_run(r) for r in wb.backtests.list_runs(limit=limit, sweep_id=sweep_id)]}


@router.post("/backtest", status_code=202, response_model=RunDetail,
             summary="Submit one backtest", **declare("backtest.submit", 409, 422, 503))
def submit(body: SubmitBacktest, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    """Validates the spec (every problem with its field) and queues the run."""
    from services.backtest import BacktestSpec, VenueSettings

    start, end = window_texts(body.start, body.end)
    spec = BacktestSpec(strategy=body.strategy, bar_type=body.bar_type, start=start,
                        end=end, parameters=body.parameters,
                        venue=VenueSettings(**body.venue.model_dump()), label=body.label)
    run_id = wb.backtests.submit(spec, principal=principal, runtime=body.runtime)
    return {"run": _run(wb.backtests.get(run_id))}


@router.post("/backtests", status_code=202, response_model=SweepSubmitted,
             summary="Submit a parameter sweep (a grid, or random draws from it)",
             **declare("sweep.submit", 409, 422, 503))
def submit_sweep(body: SubmitSweep, wb=Depends(workbench),
                 principal: Principal = Depends(control_caller)):
    """Every run is validated before any is queued; all are queued or none."""
    from services.backtest import VenueSettings
    from services.backtest.sweep import SweepSpec

    start, end = window_texts(body.start, body.end)
    spec = SweepSpec(strategy=body.strategy, bar_type=body.bar_type, grid=body.grid,
                     start=start, end=end, random_draws=body.random_draws,
                     constraints=tuple(body.constraints), fixed=body.fixed,
                     venue=VenueSettings(**body.venue.model_dump()), seed=body.seed,
                     label=body.label)
    sweep_id = wb.backtests.submit_sweep(spec, principal=principal, runtime=body.runtime)
    return {"sweep_id": sweep_id, "run_ids": [r.run_id for r in wb.backtests.sweep(sweep_id).runs]}


@router.get("/backtest/{run_id}", response_model=RunDetail,
            summary="One run; with its statistics once completed", **declare(READ, 404))
def get_run(run_id: str = RUN_ID, wb=Depends(workbench), _principal: Principal = Depends(caller)):
    info = wb.backtests.get(run_id)
    detail = {"run": _run(info), "statistics": None, "warnings": []}
    if info.status == "Completed":
        try:
            summary = wb.backtests.results(run_id).summary
            detail.update(statistics=summary.get("statistics"),
                          warnings=list(summary.get("warnings", [])))
        except BacktestError as e:
            detail["warnings"] = [str(e)]
    return detail


@router.delete("/backtest/{run_id}", response_model=RunDetail,
               summary="Cancel a queued, running or paused run",
               **declare("backtest.control", 404, 409))
def cancel(run_id: str = RUN_ID, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    """Finished runs are kept as the record of what was run: cancelling one is a 409."""
    return {"run": _run(wb.backtests.cancel(run_id, principal=principal))}
