"""Commands into running engines: manual orders, cancels, flatten, trading state, strategies,
risk limits, and the tiered emergency stop.

Each command is authorised here (``engine.command``, which a live engine grants only to
``live_trader``; ``engine.risk_limits`` for limits, ``approver`` only; the emergency tiers
``engine.emergency_stop``), written to the audit log with its outcome (refusals, denials and
timeouts included) and answered within :data:`COMMAND_TIMEOUT` seconds, by a result or by one
line saying why not. The engine carries each command out itself, through the TradingNode's own
APIs (services.engine_runtime.control); this class only decides whether it may be sent, sends
it over the engine's command channel (services.engine.channel) and reports.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass

from services.engine.channel import COMMAND_TIMEOUT, CommandChannel
from services.engine.service import RUNNING, EngineInfo, EngineService
from services.engine_runtime.protocol import TRADING_STATES
from services.engine_runtime.risk import apply_settings, limits_to_json, parse_section
from services.errors import (
    CommandRefused,
    EngineError,
    EngineStateConflict,
    EngineUnresponsive,
    ValidationError,
)
from services.identity.principal import Principal

TIERS = ("halt", "cancel", "flatten", "kill")
TIER_HELP = {
    "halt": "trading state HALTED: the risk engine denies every new order",
    "cancel": "cancel every open order",
    "flatten": "cancel every open order and close every position (stays HALTED if halted)",
    "kill": "kill the engine's container now (SIGKILL), from any state",
}
# Live orders above this notional need the engine's name typed to confirm (UI, CLI, API).
LIVE_CONFIRM_NOTIONAL = float(os.environ.get("WORKBENCH_LIVE_CONFIRM_NOTIONAL", "10000"))
REFUSING_ANSWERS = ("OrderDenied", "OrderRejected", "OrderModifyRejected",
                    "OrderCancelRejected")


@dataclass(frozen=True)
class CommandResult:
    """What the engine answered to one command."""

    session_id: str
    engine: str
    command: str
    result: dict
    took_ms: float

    def to_json(self) -> dict:
        return asdict(self)


class EngineCommands:
    """Commands into the running engines of one EngineService."""

    def __init__(self, engines: EngineService, timeout: float = COMMAND_TIMEOUT,
                 live_confirm_notional: float = LIVE_CONFIRM_NOTIONAL) -> None:
        self.engines = engines
        self.authorizer = engines.authorizer
        self.audit = engines.audit
        self.timeout = timeout
        self.live_confirm_notional = live_confirm_notional
        self._channels: dict[str, CommandChannel] = {}
        self._lock = threading.Lock()

    # -- reading (anybody who may read engines) -------------------------------------------

    def orders(self, session_id: str, open_only: bool = False) -> list[dict]:
        """The engine's orders from its cache, oldest first (at most 500)."""
        return self._ask(session_id, "orders", {"open_only": open_only})["orders"]

    def fills(self, session_id: str) -> list[dict]:
        return self._ask(session_id, "fills", {})["fills"]

    def positions(self, session_id: str, open_only: bool = False) -> dict:
        """``{"positions": [...], "net": {instrument: net quantity}}`` with realized and
        unrealized PnL per position."""
        return self._ask(session_id, "positions", {"open_only": open_only})

    def risk(self, session_id: str) -> dict:
        """The engine's risk limits against their current values, and the breached ones.

        For an engine that is not running: its configured limits only."""
        info = self.engines.get(session_id)
        if info.state != RUNNING:
            return {"limits": info.risk_limits, "values": {}, "breached": [],
                    "trading_state": None, "running": False}
        return {**self._ask(session_id, "risk", {}), "running": True}

    def feed(self, session_id: str) -> dict:
        return self._ask(session_id, "feed", {})

    def status(self, session_id: str) -> dict:
        """The engine's status snapshot, taken now."""
        return self._ask(session_id, "status", {})

    # -- acting -----------------------------------------------------------------------------

    def submit_order(self, session_id: str, instrument_id: str, side: str, quantity,
                     order_type: str = "MARKET", price=None, tif: str = "GTC",
                     reduce_only: bool = False, *, principal: Principal | None = None,
                     confirm: str | None = None) -> CommandResult:
        """Submit a manual MARKET or LIMIT order (GTC or IOC) through the engine's
        ``Workbench-MANUAL`` strategy; returns once the venue accepted (or filled) it.

        Live engines: an order whose notional is above ``live_confirm_notional`` needs
        ``confirm`` equal to the engine's name. A denied or rejected order raises
        CommandRefused with the venue's or the risk engine's reason."""
        info = self.engines.get(session_id)
        args = {"instrument_id": instrument_id, "side": side, "quantity": str(quantity),
                "type": order_type, "price": None if price in (None, "") else str(price),
                "tif": tif, "reduce_only": bool(reduce_only)}
        if info.mode == "live":
            args.update(confirm_above=self.live_confirm_notional, confirmed=confirm == info.name)
        summary = (f"{str(side).upper()} {quantity} {instrument_id} {str(order_type).upper()}"
                   + (f" @ {price}" if price not in (None, "") else "")
                   + f" {str(tif).upper()}" + (" reduce-only" if reduce_only else ""))
        return self._act(info, "engine.order", "engine.command", "submit_order", args, principal,
                         summary)

    def modify_order(self, session_id: str, client_order_id: str, *, quantity=None, price=None,
                     principal: Principal | None = None) -> CommandResult:
        info = self.engines.get(session_id)
        args = {"client_order_id": client_order_id,
                "quantity": None if quantity in (None, "") else str(quantity),
                "price": None if price in (None, "") else str(price)}
        summary = (f"{client_order_id}" + (f" quantity {quantity}" if args["quantity"] else "")
                   + (f" price {price}" if args["price"] else ""))
        return self._act(info, "engine.modify", "engine.command", "modify_order", args,
                         principal, summary)

    def cancel_order(self, session_id: str, client_order_id: str, *,
                     principal: Principal | None = None) -> CommandResult:
        info = self.engines.get(session_id)
        return self._act(info, "engine.cancel", "engine.command", "cancel_order",
                         {"client_order_id": client_order_id}, principal, client_order_id)

    def cancel_all(self, session_id: str, *, principal: Principal | None = None,
                   permission: str = "engine.command") -> CommandResult:
        info = self.engines.get(session_id)
        return self._act(info, "engine.cancel_all", permission, "cancel_all", {}, principal,
                         "every open order")

    def close_position(self, session_id: str, position_id: str | None = None,
                       instrument_id: str | None = None, *,
                       principal: Principal | None = None) -> CommandResult:
        info = self.engines.get(session_id)
        return self._act(info, "engine.close_position", "engine.command", "close_position",
                         {"position_id": position_id, "instrument_id": instrument_id}, principal,
                         position_id or instrument_id or "")

    def flatten(self, session_id: str, *, principal: Principal | None = None,
                permission: str = "engine.command") -> CommandResult:
        """Cancel every open order and close every position (a HALTED engine stays HALTED)."""
        info = self.engines.get(session_id)
        return self._act(info, "engine.flatten", permission, "flatten", {}, principal,
                         "cancel all orders, close all positions")

    def set_trading_state(self, session_id: str, state: str, *,
                          principal: Principal | None = None,
                          permission: str = "engine.command") -> CommandResult:
        """NautilusTrader's trading state: ACTIVE, REDUCING (only orders that shrink a
        position) or HALTED (no new orders). A breached risk limit keeps it at least as strict
        as the limit's action."""
        info = self.engines.get(session_id)
        wanted = str(state).strip().upper()
        if wanted not in TRADING_STATES:
            self._record(principal, "engine.trading_state", info, "invalid",
                         f"state {state!r}")
            raise ValidationError(f"Trading state must be ACTIVE, REDUCING or HALTED, was "
                                  f"{state!r}.")
        return self._act(info, "engine.trading_state", permission, "set_trading_state",
                         {"state": wanted}, principal, wanted)

    def strategy(self, session_id: str, action: str, strategy_id: str, *,
                 principal: Principal | None = None) -> CommandResult:
        """Pause (NautilusTrader's DEGRADED state: no data or event callbacks; orders and
        positions stay), resume or stop one strategy."""
        info = self.engines.get(session_id)
        return self._act(info, "engine.strategy", "engine.command", "strategy",
                         {"action": str(action).lower(), "strategy_id": strategy_id}, principal,
                         f"{str(action).lower()} {strategy_id}")

    def update_risk_limits(self, session_id: str, settings: dict, *,
                           principal: Principal | None = None) -> dict:
        """Change risk limits (``max_daily_loss=500``, ``max_daily_loss.action=HALTED``, ...);
        approvers only. A running engine applies them at once; any engine keeps them in its
        configuration. Returns the limits now in force."""
        info = self.engines.get(session_id)
        actor = self.authorizer.require(principal, "engine.risk_limits", _target(info),
                                        state=info.state)
        summary = json.dumps(settings, sort_keys=True, default=str)
        current, problems = parse_section(info.risk_limits)
        changed, found = apply_settings(current, settings)
        if problems + found or not settings:
            self._record(actor, "engine.risk_limits", info, "invalid",
                         f"{summary}: {'; '.join(problems + found) or 'nothing to change'}")
            raise ValidationError(f"Invalid risk limits for engine '{info.name}'",
                                  problems + found or ["give at least one NAME=VALUE"])
        if info.state != RUNNING:
            limits = limits_to_json(changed)
            self.engines.store_risk_limits(session_id, limits)
            self._record(actor, "engine.risk_limits", info, "stored",
                         f"{summary} (engine {info.state}: used at its next start)")
            return {"limits": limits, "running": False}
        result = self._act(info, "engine.risk_limits", "engine.risk_limits", "set_risk_limits",
                           {"settings": {k: str(v) for k, v in settings.items()}}, actor,
                           summary)
        self.engines.store_risk_limits(session_id, result.result["limits"])
        return {**result.result, "running": True}

    def emergency(self, session_id: str, tier: str, *,
                  principal: Principal | None = None) -> CommandResult | EngineInfo:
        """One tier of the emergency stop: halt, cancel, flatten or kill. Kill is never refused
        for the engine's state."""
        if tier not in TIERS:
            raise ValidationError(f"Emergency-stop tier must be one of {', '.join(TIERS)}, was "
                                  f"{tier!r}.")
        if tier == "kill":
            result = self.engines.emergency_stop(session_id, principal=principal)
            self.close_channel(session_id)
            return result
        run = {"halt": lambda: self.set_trading_state(session_id, "HALTED", principal=principal,
                                                      permission="engine.emergency_stop"),
               "cancel": lambda: self.cancel_all(session_id, principal=principal,
                                                 permission="engine.emergency_stop"),
               "flatten": lambda: self.flatten(session_id, principal=principal,
                                               permission="engine.emergency_stop")}
        return run[tier]()

    def emergency_all(self, tier: str, *, principal: Principal | None = None) -> list:
        """The tier on every active engine (halt, cancel and flatten: every running one)."""
        if tier == "kill":
            killed = self.engines.emergency_stop_all(principal=principal)
            for info in killed:
                self.close_channel(info.session_id)
            return killed
        results = []
        for info in self.engines.list_sessions():
            if info.state == RUNNING:
                try:
                    results.append(self.emergency(info.session_id, tier, principal=principal))
                except EngineError as e:
                    results.append(e)  # one unresponsive engine must not spare the others
        return results

    def close_channel(self, session_id: str) -> None:
        with self._lock:
            channel = self._channels.pop(session_id, None)
        if channel is not None:
            channel.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _channel(self, info: EngineInfo) -> CommandChannel:
        with self._lock:
            channel = self._channels.get(info.session_id)
            if channel is None or channel.container_id != info.container_id:
                channel = CommandChannel(self.engines.docker, info.container_id,
                                         f"engine '{info.name}'")
                self._channels[info.session_id] = channel
            return channel

    def _ask(self, session_id: str, command: str, args: dict) -> dict:
        info = self.engines.get(session_id)
        self._require_running(info)
        try:
            return self._channel(info).call(command, args, self.timeout)
        except EngineError as e:
            raise self._explain(info, e) from e

    def _require_running(self, info: EngineInfo, actor: Principal | None = None,
                         action: str | None = None) -> None:
        problem = None
        if self.engines.is_being_killed(info.session_id):
            problem = (f"Engine '{info.name}' is being emergency-stopped; the command was not "
                       "sent.")
        elif info.state != RUNNING:
            problem = (f"Engine '{info.name}' is {info.state}: commands go only to a running "
                       "engine." + (" Its last snapshot: nautilus-workbench engine status "
                                    f"{info.session_id}." if info.status else ""))
        if problem is None:
            return
        if actor is not None and action is not None:
            self._record(actor, action, info, "refused", problem)
        self.close_channel(info.session_id)
        raise EngineStateConflict(problem)

    def _act(self, info: EngineInfo, action: str, permission: str, command: str, args: dict,
             principal: Principal | None, summary: str) -> CommandResult:
        actor = self.authorizer.require(principal, permission, _target(info),
                                        live=info.mode == "live", state=info.state)
        self._require_running(info, actor, action)
        started = time.perf_counter()
        try:
            result = self._channel(info).call(command, args, self.timeout)
        except CommandRefused as e:
            self._record(actor, action, info, "refused", f"{summary}: {e}")
            raise CommandRefused(f"Engine '{info.name}' refused {summary}: {e}") from e
        except EngineUnresponsive as e:
            self._record(actor, action, info, "timeout", f"{summary}: {e}")
            raise
        except EngineError as e:
            explained = self._explain(info, e)
            self._record(actor, action, info, "failed", f"{summary}: {explained}")
            raise explained from e
        took = (time.perf_counter() - started) * 1000
        answer = result.get("answer")
        if answer in REFUSING_ANSWERS:
            order = result.get("order") or {}
            reason = result.get("reason") or "no reason given"
            what = {"OrderDenied": "denied by the engine's risk engine",
                    "OrderRejected": "rejected by the venue"}.get(answer, "refused by the venue")
            self._record(actor, action, info, "denied",
                         f"{summary}: {order.get('client_order_id', '')} {what}: {reason}")
            raise CommandRefused(f"{summary} was {what}: {reason}")
        self._record(actor, action, info, "ok", f"{summary}: {_outcome(result)}")
        return CommandResult(info.session_id, info.name, command, result, round(took, 3))

    def _explain(self, info: EngineInfo, error: EngineError) -> EngineError:
        """The error, or why the engine cannot answer (stopped, killed, vanished)."""
        if isinstance(error, (CommandRefused, EngineUnresponsive)):
            return error
        try:
            now = self.engines.refresh(info.session_id)
        except EngineError:
            return error
        if now.state != RUNNING or self.engines.is_being_killed(info.session_id):
            self.close_channel(info.session_id)
            how = ("was killed (emergency stop)" if now.final_state == "Killed"
                   or self.engines.is_being_killed(info.session_id) else f"is {now.state}")
            return EngineStateConflict(f"Engine '{info.name}' {how}; the command's outcome is "
                                       "unknown: check its orders when it runs again, or the "
                                       "venue.")
        return error

    def _record(self, actor: Principal | None, action: str, info: EngineInfo, outcome: str,
                detail: str) -> None:
        name = actor or self.authorizer.default or "anonymous"
        self.audit.record(name, action, _target(info), outcome, detail, info.state, info.state)


def _target(info: EngineInfo) -> str:
    return f"{info.name} ({info.session_id})"


def _outcome(result: dict) -> str:
    order = result.get("order")
    if order:
        return (f"{order.get('client_order_id')} {order.get('status')}"
                + (f" ({result['note']})" if result.get("note") else ""))
    keys = ("trading_state", "state", "requested", "orders_canceled", "positions_closed",
            "closing", "still_open", "positions_still_open")
    return ", ".join(f"{k} {result[k]}" for k in keys if k in result) or "done"


__all__ = ["CommandResult", "EngineCommands", "LIVE_CONFIRM_NOTIONAL", "TIERS", "TIER_HELP"]
