"""Commands into a running engine, executed on the node's event loop through its own APIs.

Runs inside the engine container. :class:`ControlServer` serves the Unix socket of
:mod:`services.engine_runtime.protocol`; :class:`EngineController` carries out each command with
the TradingNode's components: manual orders through the workbench's own strategy
(``Workbench-MANUAL``, added to every node), cancels, modifications and closes through the
strategy that owns the order or position, the trading state through the risk engine's
``set_trading_state``, pause/resume/stop through the strategy's state machine (NautilusTrader's
DEGRADED state is "paused": no data or event callbacks, orders and positions stay).

Every failure is a :class:`CommandError` with one line saying what was wrong.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from nautilus_trader.common.enums import ComponentState
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.enums import OrderSide, PriceType, TimeInForce, TradingState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, PositionId, StrategyId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from services.engine_runtime.events import fill_json, order_json, position_json
from services.engine_runtime.guard import trading_state_name
from services.engine_runtime.protocol import (
    ANSWER_WAIT_SECONDS,
    MANUAL_STRATEGY_ID,
    ORDER_SIDES,
    ORDER_TYPES,
    PROTOCOL_VERSION,
    STRATEGY_ACTIONS,
    TIMES_IN_FORCE,
    TRADING_STATES,
)
from services.engine_runtime.risk import apply_settings, limits_to_json

# The first answer that settles each kind of command.
SUBMIT_ANSWERS = {"OrderAccepted", "OrderDenied", "OrderRejected", "OrderFilled",
                  "OrderCanceled", "OrderExpired"}
MODIFY_ANSWERS = {"OrderUpdated", "OrderModifyRejected", "OrderFilled", "OrderCanceled"}
CANCEL_ANSWERS = {"OrderCanceled", "OrderCancelRejected", "OrderFilled", "OrderExpired"}
MAX_LISTED = 500


class CommandError(Exception):
    """A command that cannot be carried out; the message is the one line the user sees."""


class ManualOrders(Strategy):
    """The strategy manual orders from the workbench belong to; it trades nothing by itself."""

    def __init__(self) -> None:
        name, _, tag = MANUAL_STRATEGY_ID.partition("-")  # NautilusTrader joins them with "-"
        super().__init__(StrategyConfig(strategy_id=name, order_id_tag=tag))


class Answers:
    """Futures settled by the first order event of an expected kind (per client order id)."""

    def __init__(self, msgbus) -> None:
        self._waiting: dict[str, list[tuple[set[str], asyncio.Future]]] = {}
        msgbus.subscribe("events.order.*", self._on_order_event)

    def expect(self, client_order_id: str, kinds: set[str]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(client_order_id, []).append((kinds, future))
        return future

    def _on_order_event(self, event) -> None:
        key = str(event.client_order_id)
        waiting = self._waiting.get(key)
        if not waiting:
            return
        name = type(event).__name__
        left = []
        for kinds, future in waiting:
            if future.done():
                continue
            if name in kinds:
                future.set_result(event)
            else:
                left.append((kinds, future))
        if left:
            self._waiting[key] = left
        else:
            self._waiting.pop(key, None)

    async def wait(self, future: asyncio.Future, timeout: float = ANSWER_WAIT_SECONDS):
        """The settling event, or None when the venue has not answered within ``timeout``."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None


def _decimal(raw, what: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise CommandError(f"{what} must be a number, was {raw!r}") from None
    if not value.is_finite():
        raise CommandError(f"{what} must be a finite number, was {raw!r}")
    return value


def _multiple_of(value: Decimal, step: Decimal) -> bool:
    return step == 0 or (value / step) == (value / step).to_integral_value()


def _choice(raw, choices: tuple[str, ...], what: str) -> str:
    text = str(raw or "").strip().upper()
    if text not in choices:
        raise CommandError(f"{what} must be {' or '.join(choices)}, was {raw!r}")
    return text


def cancel_every_order(trader, cache) -> list:
    """Ask each strategy that owns open orders to cancel them (``cancel_all_orders`` per
    instrument); returns the orders asked about."""
    open_orders = [o for o in cache.orders_open() + cache.orders_inflight()
                   if not o.is_pending_cancel]
    owners = {s.id: s for s in trader.strategies()}
    by_strategy: dict = {}
    for order in open_orders:
        by_strategy.setdefault(order.strategy_id, set()).add(order.instrument_id)
    for strategy_id, instruments in by_strategy.items():
        strategy = owners.get(strategy_id)
        if strategy is None:
            continue  # an external order no strategy claims: left to the venue
        for instrument_id in instruments:
            strategy.cancel_all_orders(instrument_id)
    return open_orders


class EngineController:
    """The commands of the control socket over one TradingNode."""

    def __init__(self, node, manual: ManualOrders, guard, feed, snapshot) -> None:
        kernel = node.kernel
        self.trader = node.trader
        self.cache = kernel.cache
        self.portfolio = kernel.portfolio
        self.risk_engine = kernel.risk_engine
        self.data_engine = kernel.data_engine
        self.manual = manual
        self.guard = guard
        self.feed = feed
        self.snapshot = snapshot
        self.answers = Answers(kernel.msgbus)

    async def handle(self, command: str, args: dict) -> dict:
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            raise CommandError(f"unknown command {command!r}")
        try:
            inspect.signature(handler).bind(**args)
        except TypeError as e:
            raise CommandError(f"bad arguments for {command}: {e}") from None
        return await handler(**args)

    # -- reading --------------------------------------------------------------------------

    async def cmd_hello(self) -> dict:
        return {"protocol": PROTOCOL_VERSION, "trader_id": str(self.trader.id),
                "manual_strategy": MANUAL_STRATEGY_ID, "pid": os.getpid(),
                "instruments": sorted(str(i.id) for i in self.cache.instruments())}

    async def cmd_status(self) -> dict:
        return self.snapshot()

    async def cmd_orders(self, open_only: bool = False) -> dict:
        orders = self.cache.orders_open() if open_only else self.cache.orders()
        orders = sorted(orders, key=lambda o: o.ts_init)[-MAX_LISTED:]
        return {"orders": [order_json(o) for o in orders]}

    async def cmd_fills(self) -> dict:
        fills = [e for o in self.cache.orders() for e in o.events if isinstance(e, OrderFilled)]
        fills.sort(key=lambda e: e.ts_event)
        return {"fills": [fill_json(e) for e in fills[-MAX_LISTED:]]}

    async def cmd_positions(self, open_only: bool = False) -> dict:
        positions = self.cache.positions_open() if open_only else self.cache.positions()
        positions = sorted(positions, key=lambda p: p.ts_opened)[-MAX_LISTED:]
        net = {str(i.id): float(self.portfolio.net_position(i.id))
               for i in self.cache.instruments()}
        return {"positions": [position_json(p, self.cache) for p in positions], "net": net}

    async def cmd_risk(self) -> dict:
        self.guard.check()
        return {**self.guard.book.snapshot(), "trading_state": trading_state_name(self.risk_engine)}

    async def cmd_feed(self) -> dict:
        return self.feed()

    # -- orders ---------------------------------------------------------------------------

    def _instrument(self, instrument_id):
        try:
            found = self.cache.instrument(InstrumentId.from_str(str(instrument_id)))
        except ValueError:
            found = None
        if found is None:
            traded = ", ".join(sorted(str(i.id) for i in self.cache.instruments())) or "none"
            raise CommandError(f"instrument {instrument_id} is not traded by this engine "
                               f"(it trades {traded})")
        return found

    def _quantity(self, instrument, raw) -> Quantity:
        value = _decimal(raw, "quantity")
        step = Decimal(str(instrument.size_increment))
        if value <= 0:
            raise CommandError(f"quantity must be positive, was {raw}")
        if not _multiple_of(value, step):
            raise CommandError(f"quantity {raw} is not a multiple of {instrument.id}'s size "
                               f"increment {step}")
        if instrument.min_quantity is not None and value < Decimal(str(instrument.min_quantity)):
            raise CommandError(f"quantity {raw} is below {instrument.id}'s minimum "
                               f"{instrument.min_quantity}")
        if instrument.max_quantity is not None and value > Decimal(str(instrument.max_quantity)):
            raise CommandError(f"quantity {raw} is above {instrument.id}'s maximum "
                               f"{instrument.max_quantity}")
        return Quantity(value, instrument.size_precision)

    def _price(self, instrument, raw) -> Price:
        value = _decimal(raw, "price")
        step = Decimal(str(instrument.price_increment))
        if value <= 0:
            raise CommandError(f"price must be positive, was {raw}")
        if not _multiple_of(value, step):
            raise CommandError(f"price {raw} is off {instrument.id}'s tick: use a multiple of "
                               f"{step}")
        return Price(value, instrument.price_precision)

    def _order(self, client_order_id):
        order = self.cache.order(ClientOrderId(str(client_order_id)))
        if order is None:
            raise CommandError(f"there is no order {client_order_id} in this engine")
        return order

    def _owner(self, strategy_id) -> Strategy:
        for strategy in self.trader.strategies():
            if strategy.id == strategy_id:
                return strategy
        raise CommandError(f"strategy {strategy_id} is not in this engine")

    async def _answer(self, future, order, action: str) -> dict:
        event = await self.answers.wait(future)
        current = self.cache.order(order.client_order_id)
        result = {"order": order_json(current), "answer": type(event).__name__ if event else None}
        if event is None:
            result["note"] = (f"{action} sent; the venue has not answered within "
                              f"{ANSWER_WAIT_SECONDS:g} s (follow the order in the blotter)")
        elif getattr(event, "reason", None):
            result["reason"] = str(event.reason)
        return result

    async def cmd_submit_order(self, instrument_id: str, side: str, quantity, type: str = "MARKET",
                               price=None, tif: str = "GTC", reduce_only: bool = False,
                               confirm_above: float | None = None,
                               confirmed: bool = False) -> dict:
        """A manual order; ``confirm_above`` (live engines): a notional above it needs
        ``confirmed`` (the engine's name typed)."""
        instrument = self._instrument(instrument_id)
        side = _choice(side, ORDER_SIDES, "side")
        order_type = _choice(type, ORDER_TYPES, "type")
        tif = _choice(tif, TIMES_IN_FORCE, "time in force")
        qty = self._quantity(instrument, quantity)
        if order_type == "LIMIT" and price in (None, ""):
            raise CommandError("a LIMIT order needs a price")
        if order_type == "MARKET" and price not in (None, ""):
            raise CommandError("a MARKET order takes no price (use --type LIMIT for a price)")
        limit_px = self._price(instrument, price) if order_type == "LIMIT" else None
        before = float(self.portfolio.net_position(instrument.id))
        signed = float(qty) if side == "BUY" else -float(qty)
        reference = limit_px or self._reference_price(instrument, side)
        exposure = (float(instrument.notional_value(qty, reference).as_double())
                    if reference is not None else None)
        if confirm_above is not None and not confirmed and (exposure is None
                                                            or exposure > confirm_above):
            shown = f"{exposure:,.2f}" if exposure is not None else "unknown (no price yet)"
            raise CommandError(f"the order's notional {shown} is above {confirm_above:,.0f}: "
                               "type the engine's name to confirm it")
        if not reduce_only:
            problem = self.guard.book.pre_trade_problem(str(instrument.id), before,
                                                        before + signed, exposure)
            if problem:
                raise CommandError(f"refused by the workbench's risk limits: {problem}")
        factory = self.manual.order_factory
        if order_type == "MARKET":
            order = factory.market(instrument.id, OrderSide[side], qty,
                                   time_in_force=TimeInForce[tif], reduce_only=bool(reduce_only))
        else:
            order = factory.limit(instrument.id, OrderSide[side], qty, limit_px,
                                  time_in_force=TimeInForce[tif], reduce_only=bool(reduce_only))
        future = self.answers.expect(str(order.client_order_id), SUBMIT_ANSWERS)
        self.manual.submit_order(order)
        return await self._answer(future, order, "order")

    def _reference_price(self, instrument, side: str):
        quote = self.cache.quote_tick(instrument.id)
        if quote is not None:
            return quote.ask_price if side == "BUY" else quote.bid_price
        return self.cache.price(instrument.id, PriceType.LAST)

    async def cmd_modify_order(self, client_order_id: str, quantity=None, price=None) -> dict:
        order = self._order(client_order_id)
        if not order.is_open:
            raise CommandError(f"order {client_order_id} is {order.status_string()}; only open "
                               "orders can be modified")
        if quantity in (None, "") and price in (None, ""):
            raise CommandError("modify needs a new quantity or a new price")
        instrument = self._instrument(order.instrument_id)
        qty = self._quantity(instrument, quantity) if quantity not in (None, "") else None
        new_px = None
        if price not in (None, ""):
            if not order.has_price:
                raise CommandError(f"order {client_order_id} is a {order.type_string()} order "
                                   "and has no price to modify")
            new_px = self._price(instrument, price)
        future = self.answers.expect(str(order.client_order_id), MODIFY_ANSWERS)
        self._owner(order.strategy_id).modify_order(order, quantity=qty, price=new_px)
        return await self._answer(future, order, "modification")

    async def cmd_cancel_order(self, client_order_id: str) -> dict:
        order = self._order(client_order_id)
        if order.is_closed:
            raise CommandError(f"order {client_order_id} is already {order.status_string()}")
        future = self.answers.expect(str(order.client_order_id), CANCEL_ANSWERS)
        self._owner(order.strategy_id).cancel_order(order)
        return await self._answer(future, order, "cancel")

    def cancel_everything(self) -> list:
        return cancel_every_order(self.trader, self.cache)

    async def _await_closed(self, orders: list) -> list[str]:
        """Client order ids of ``orders`` still open after the answer wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WAIT_SECONDS
        while loop.time() < deadline:
            pending = [o for o in orders if not self.cache.order(o.client_order_id).is_closed]
            if not pending:
                return []
            await asyncio.sleep(0.02)
        return [str(o.client_order_id) for o in orders
                if not self.cache.order(o.client_order_id).is_closed]

    async def cmd_cancel_all(self) -> dict:
        orders = self.cancel_everything()
        pending = await self._await_closed(orders)
        return {"requested": len(orders), "still_open": pending}

    async def _await_flat(self, positions: list, deadline: float | None = None) -> list[str]:
        """Ids of ``positions`` still open at ``deadline`` (default: the answer wait)."""
        loop = asyncio.get_running_loop()
        deadline = deadline or loop.time() + ANSWER_WAIT_SECONDS
        while loop.time() < deadline:
            if all(self.cache.position(p.id).is_closed for p in positions):
                return []
            await asyncio.sleep(0.005)
        return [str(p.id) for p in positions if not self.cache.position(p.id).is_closed]

    async def _close_all(self, positions: list) -> tuple[list[str], str]:
        """Close ``positions`` through their strategies; returns (still open, trading state).

        ACTIVE: every closing order goes at once. Otherwise the risk engine judges each order
        against the portfolio's *net* position (REDUCING denies a SELL while net short, HALTED
        denies everything), and each strategy holds its own position. So the positions are
        closed one by one, each chosen to shrink the current net position, each waited for
        until filled; a HALTED engine is REDUCING only for that time, then HALTED again. The
        strategies are held (paused) meanwhile: REDUCING would let a strategy's own entry on
        the same side through next to the closing order, and the two together would turn the
        position around instead of closing it."""
        state = trading_state_name(self.risk_engine)
        if state == "ACTIVE":
            for position in positions:
                self._owner(position.strategy_id).close_position(position)
            return await self._await_flat(positions), state
        held = self._hold_strategies()
        if state == "HALTED":
            self.risk_engine.set_trading_state(TradingState.REDUCING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WAIT_SECONDS
        try:
            while loop.time() < deadline:
                remaining = [p for p in (self.cache.position(p.id) for p in positions)
                             if p.is_open]
                if not remaining:
                    break
                position = self._next_to_close(remaining)
                if not self._being_closed(position):
                    self._owner(position.strategy_id).close_position(position)
                await self._await_flat([position], deadline)
        finally:
            if state == "HALTED":
                self.risk_engine.set_trading_state(TradingState.HALTED)
            for strategy in held:
                strategy.resume()
        return await self._await_flat(positions, deadline), trading_state_name(self.risk_engine)

    def _hold_strategies(self) -> list:
        """Pause every running strategy but the manual one; returns those paused."""
        held = [s for s in self.trader.strategies()
                if s.state == ComponentState.RUNNING and str(s.id) != MANUAL_STRATEGY_ID]
        for strategy in held:
            strategy.degrade()
        return held

    def _being_closed(self, position) -> bool:
        """An order for the position's instrument and strategy is still working (a second
        closing order would turn the position around)."""
        mine = dict(instrument_id=position.instrument_id, strategy_id=position.strategy_id)
        return bool(self.cache.orders_open(**mine) or self.cache.orders_inflight(**mine))

    def _next_to_close(self, positions: list):
        """A position whose closing order shrinks the instrument's net position (the risk
        engine lets it through while REDUCING)."""
        for position in positions:
            net = float(self.portfolio.net_position(position.instrument_id))
            if net == 0 or (net > 0) == position.is_long:
                return position
        return positions[0]

    async def cmd_close_position(self, position_id: str | None = None,
                                 instrument_id: str | None = None) -> dict:
        if position_id:
            position = self.cache.position(PositionId(str(position_id)))
            if position is None:
                raise CommandError(f"there is no position {position_id} in this engine")
            if position.is_closed:
                raise CommandError(f"position {position_id} is already closed")
            positions = [position]
        elif instrument_id:
            instrument = self._instrument(instrument_id)
            positions = self.cache.positions_open(instrument_id=instrument.id)
            if not positions:
                raise CommandError(f"there is no open position in {instrument_id}")
        else:
            raise CommandError("close needs a position id or an instrument id")
        still, state = await self._close_all(positions)
        return {"closing": [str(p.id) for p in positions], "still_open": still,
                "trading_state": state}

    async def cmd_flatten(self) -> dict:
        orders = self.cancel_everything()
        positions = list(self.cache.positions_open())
        still, state = await self._close_all(positions) if positions else ([], None)
        open_orders = await self._await_closed(orders)
        return {"orders_canceled": len(orders) - len(open_orders), "orders_still_open": open_orders,
                "positions_closed": len(positions) - len(still), "positions_still_open": still,
                "trading_state": state or trading_state_name(self.risk_engine)}

    # -- engine and strategies ------------------------------------------------------------

    async def cmd_set_trading_state(self, state: str) -> dict:
        wanted = _choice(state, TRADING_STATES, "trading state")
        blocking = self.guard.book.blocking(wanted)
        if blocking is not None:
            raise CommandError(f"{blocking.message.split(':')[0]}: trading stays "
                               f"{blocking.action} until an approver raises {blocking.limit} "
                               "or the value falls back under it")
        was = trading_state_name(self.risk_engine)
        if was != wanted:
            self.risk_engine.set_trading_state(TradingState[wanted])
        return {"trading_state": trading_state_name(self.risk_engine), "was": was}

    async def cmd_strategy(self, action: str, strategy_id: str) -> dict:
        action = str(action).lower()
        if action not in STRATEGY_ACTIONS:
            raise CommandError(f"strategy action must be pause, resume or stop, was {action!r}")
        if strategy_id == MANUAL_STRATEGY_ID:
            raise CommandError(f"{MANUAL_STRATEGY_ID} carries the manual orders and is not "
                               "paused or stopped; use cancel-all or trading-state instead")
        try:
            strategy = self._owner(StrategyId(str(strategy_id)))
        except ValueError:
            raise CommandError(f"strategy id {strategy_id!r} is not valid (e.g. EMACross-000)") \
                from None
        state = strategy.state
        if action == "pause":
            if state != ComponentState.RUNNING:
                raise CommandError(f"strategy {strategy_id} is {state.name}; only a RUNNING "
                                   "strategy can be paused")
            strategy.degrade()
        elif action == "resume":
            if state != ComponentState.DEGRADED:
                raise CommandError(f"strategy {strategy_id} is {state.name}; only a paused "
                                   "strategy can be resumed"
                                   + (" (a stopped one needs an engine restart)"
                                      if state == ComponentState.STOPPED else ""))
            strategy.resume()
        else:
            if state not in (ComponentState.RUNNING, ComponentState.DEGRADED):
                raise CommandError(f"strategy {strategy_id} is {state.name}; there is nothing "
                                   "to stop")
            self.trader.stop_strategy(strategy.id)
        return {"strategy_id": str(strategy.id), "state": strategy.state.name,
                "was": state.name}

    async def cmd_set_risk_limits(self, settings: dict) -> dict:
        book = self.guard.book
        limits, problems = apply_settings(book.limits, settings)
        if problems:
            raise CommandError("; ".join(problems))
        book.update_limits(limits)
        self.guard.check()
        return {"limits": limits_to_json(limits), "required_state": book.required_state(),
                "trading_state": trading_state_name(self.risk_engine)}


class ControlServer:
    """Serves the control socket: JSON lines in, JSON lines out, one task per request."""

    def __init__(self, controller: EngineController, path: str, log) -> None:
        self.controller = controller
        self.path = Path(path)
        self._log = log
        self._server = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()  # left over from an earlier run of this container
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                       limit=1 << 20)
        os.chmod(self.path, 0o600)
        self._log.info(f"Workbench control socket at {self.path}")

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task] = set()
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                task = asyncio.ensure_future(self._answer(line, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the relay went away (exec session closed) or sent an over-long line
        finally:
            for task in tasks:
                await asyncio.wait([task], timeout=ANSWER_WAIT_SECONDS)
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("args") or {}, dict):
                raise ValueError("expected {\"id\", \"command\", \"args\": {...}}")
        except ValueError as e:
            await self._write(writer, {"id": None, "ok": False, "error": f"malformed request: {e}"})
            return
        request_id = request.get("id")
        try:
            result = await self.controller.handle(str(request.get("command")),
                                                  request.get("args") or {})
            answer = {"id": request_id, "ok": True, "result": result}
        except CommandError as e:
            answer = {"id": request_id, "ok": False, "error": str(e)}
        except Exception as e:  # a bug must answer, not hang the caller
            self._log.error(f"Workbench command failed: {type(e).__name__}: {e}")
            answer = {"id": request_id, "ok": False, "error": f"{type(e).__name__}: {e}"}
        await self._write(writer, answer)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, answer: dict) -> None:
        try:
            writer.write((json.dumps(answer, default=str) + "\n").encode())
            await writer.drain()
        except ConnectionError:
            pass  # the caller is gone; the command itself has been carried out
