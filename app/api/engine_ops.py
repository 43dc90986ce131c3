"""Live operations inside a running engine: orders, fills, positions, cancel, modify, close,
flatten, trading state, strategies, risk limits and feed health.

Each route calls services.engine.commands.EngineCommands, which authorises (engine.command;
engine.risk_limits for limits), audits and answers within 2 s; an engine that refuses a command
(a bad order, a risk-engine denial) answers 422 with its one-line reason, a stopped engine 409,
an engine that does not answer 504.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from app.api.deps import caller, control_caller, workbench
from app.api.models import (
    ClosePosition,
    CommandAnswer,
    EngineSession,
    FeedReport,
    Fills,
    ModifyOrder,
    OrderRef,
    Orders,
    Positions,
    RiskChange,
    RiskReport,
    SetTradingState,
    StrategyCommand,
    SubmitOrder,
)
from app.api.routes import READ, declare
from services.identity.principal import Principal

router = APIRouter(prefix="/api/v1/nautilus/engine", tags=["live operations"])
SESSION = Query(pattern=r"^[0-9a-f]{12}$", description="Engine session id.")
COMMAND_ERRORS = (404, 409, 422, 503, 504)


@router.post("/order", response_model=CommandAnswer, summary="Submit a manual order",
             **declare("engine.command", *COMMAND_ERRORS))
def order(body: SubmitOrder, wb=Depends(workbench),
          principal: Principal = Depends(control_caller)):
    """MARKET or LIMIT, GTC or IOC, optionally reduce-only, through the engine's
    Workbench-MANUAL strategy; answers once the venue accepted (or filled) it. A denied or
    rejected order is a 422 with the reason."""
    return wb.commands.submit_order(
        body.session_id, body.instrument_id, body.side, body.quantity, order_type=body.type,
        price=body.price, tif=body.tif, reduce_only=body.reduce_only, principal=principal,
        confirm=body.confirm).to_json()


@router.get("/orders", response_model=Orders, summary="An engine's orders",
            **declare(READ, 404, 409, 503, 504))
def orders(session_id: str = SESSION, open_only: bool = Query(False), wb=Depends(workbench),
           _principal: Principal = Depends(caller)):
    return {"session_id": session_id,
            "orders": wb.commands.orders(session_id, open_only=open_only)}


@router.get("/fills", response_model=Fills, summary="An engine's fills",
            **declare(READ, 404, 409, 503, 504))
def fills(session_id: str = SESSION, wb=Depends(workbench),
          _principal: Principal = Depends(caller)):
    return {"session_id": session_id, "fills": wb.commands.fills(session_id)}


@router.get("/positions", response_model=Positions,
            summary="An engine's positions with realized and unrealized PnL",
            **declare(READ, 404, 409, 503, 504))
def positions(session_id: str = SESSION, open_only: bool = Query(False), wb=Depends(workbench),
              _principal: Principal = Depends(caller)):
    return {"session_id": session_id, **wb.commands.positions(session_id, open_only=open_only)}


@router.post("/cancel", response_model=CommandAnswer, summary="Cancel one order",
             **declare("engine.command", *COMMAND_ERRORS))
def cancel(body: OrderRef, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    return wb.commands.cancel_order(body.session_id, body.client_order_id,
                                    principal=principal).to_json()


@router.post("/modify", response_model=CommandAnswer,
             summary="Change an open order's quantity or price",
             **declare("engine.command", *COMMAND_ERRORS))
def modify(body: ModifyOrder, wb=Depends(workbench),
           principal: Principal = Depends(control_caller)):
    return wb.commands.modify_order(body.session_id, body.client_order_id,
                                    quantity=body.quantity, price=body.price,
                                    principal=principal).to_json()


@router.post("/cancel-all", response_model=CommandAnswer, summary="Cancel every open order",
             **declare("engine.command", *COMMAND_ERRORS))
def cancel_all(body: EngineSession, wb=Depends(workbench),
               principal: Principal = Depends(control_caller)):
    return wb.commands.cancel_all(body.session_id, principal=principal).to_json()


@router.post("/close-position", response_model=CommandAnswer,
             summary="Close one position, or every position in an instrument",
             **declare("engine.command", *COMMAND_ERRORS))
def close_position(body: ClosePosition, wb=Depends(workbench),
                   principal: Principal = Depends(control_caller)):
    return wb.commands.close_position(body.session_id, position_id=body.position_id,
                                      instrument_id=body.instrument_id,
                                      principal=principal).to_json()


@router.post("/flatten", response_model=CommandAnswer,
             summary="Cancel every open order and close every position",
             **declare("engine.command", *COMMAND_ERRORS))
def flatten(body: EngineSession, wb=Depends(workbench),
            principal: Principal = Depends(control_caller)):
    """A HALTED engine stays HALTED: it is REDUCING only while its closing orders pass."""
    return wb.commands.flatten(body.session_id, principal=principal).to_json()


@router.post("/trading-state", response_model=CommandAnswer,
             summary="Set the trading state (ACTIVE, REDUCING, HALTED)",
             **declare("engine.command", *COMMAND_ERRORS))
def trading_state(body: SetTradingState, wb=Depends(workbench),
                  principal: Principal = Depends(control_caller)):
    """NautilusTrader's own trading state; a breached risk limit keeps it at least as strict
    as the limit's action (422 with the limit)."""
    return wb.commands.set_trading_state(body.session_id, body.state,
                                         principal=principal).to_json()


@router.post("/strategy", response_model=CommandAnswer,
             summary="Pause, resume or stop one strategy",
             **declare("engine.command", *COMMAND_ERRORS))
def strategy(body: StrategyCommand, wb=Depends(workbench),
             principal: Principal = Depends(control_caller)):
    """Pause is NautilusTrader's DEGRADED state: no data or event callbacks reach the strategy;
    its orders and positions stay."""
    return wb.commands.strategy(body.session_id, body.action, body.strategy_id,
                                principal=principal).to_json()


@router.get("/risk", response_model=RiskReport,
            summary="An engine's risk limits against their current values",
            **declare(READ, 404, 503, 504))
def risk(session_id: str = SESSION, wb=Depends(workbench),
         _principal: Principal = Depends(caller)):
    """A running engine's limits, values and breached limits; else its configured limits."""
    return {"session_id": session_id, **wb.commands.risk(session_id)}


@router.put("/risk", response_model=RiskReport, summary="Change an engine's risk limits",
            **declare("engine.risk_limits", 404, 409, 422, 503, 504))
def change_risk(body: RiskChange, wb=Depends(workbench),
                principal: Principal = Depends(control_caller)):
    """Approvers only. A running engine applies them at once; every engine keeps them in its
    configuration for its next start."""
    wb.commands.update_risk_limits(body.session_id, body.settings, principal=principal)
    return {"session_id": body.session_id, **wb.commands.risk(body.session_id)}


@router.get("/feed", response_model=FeedReport, summary="An engine's feed health",
            **declare(READ, 404, 409, 503, 504))
def feed(session_id: str = SESSION, wb=Depends(workbench),
         _principal: Principal = Depends(caller)):
    """Per instrument the age of the last update, the latency (ts_init - ts_event, last and
    worst since the previous snapshot), updates and gaps; the data clients' connections."""
    return {"session_id": session_id, **wb.commands.feed(session_id)}
