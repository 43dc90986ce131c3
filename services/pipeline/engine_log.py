"""What a paper or live engine traded, read from its log: NautilusTrader's own ``OrderFilled``
events and the replay's timing.

The workbench keeps every engine's log (``<state>/engines/<session>/engine.log``): one line per
NautilusTrader log record, prefixed by Docker's receive time. Strategies log the events they
receive, e.g.::

    2026-12-01T19:57:14.817688178Z [INFO] PAPER-fcaffda57524.EMACross: <--[EVT] OrderFilled(
    instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-..., venue_order_id=BINANCE-1-001,
    account_id=BINANCE-001, trade_id=T-23597779ce5881e0-001, position_id=..., order_side=BUY,
    order_type=MARKET, last_qty=0.100, last_px=45_462.4 USDT, commission=1.81849600 USDT,
    liquidity_side=TAKER, ts_event=1796155034809548307)

(on one line). Replayed data is stamped with the engine's wall clock, so a fill's ``ts_event``
is wall time; :func:`replay_timing` finds what maps it back to the data's time: when the
replay's first record was handed to the engine (the strategy's first logged bar, else the
replay client's "Subscribed ... bars" line) and the last bar it traded on (the strategy's last
logged bar, else the moment the node began to stop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

_LINE = re.compile(r"^(?P<wall>\d{4}-\d{2}-\d{2}T[\d:.]+Z) \[(?P<level>\w+)\] "
                   r"(?P<trader>[^.\s]+)\.(?P<component>[^:\s]+): (?P<message>.*)$")
_FIELD = re.compile(r"(\w+)=([^,()]*(?:\([^)]*\))?[^,()]*)(?:, |\)$)")
_MONEY = re.compile(r"^(-?[\d_]+(?:\.\d+)?)(?: ([A-Z0-9]+))?$")
_BAR = re.compile(r"^Bar\((?P<bar_type>[^,]+),[^)]*,(?P<ts>\d+)\)$")
FILL_COLUMNS = ["ts_wall", "component", "trade_id", "client_order_id", "instrument_id", "side",
                "order_type", "quantity", "price", "commission", "commission_currency",
                "liquidity_side"]


@dataclass(frozen=True)
class ReplayTiming:
    """Wall-clock moments of an engine's run, in ns since the epoch (None: not in the log)."""

    first_bar_wall: int | None  # the first bar of the bar type the engine received
    last_bar_wall: int | None  # the last one
    subscribed_wall: int | None  # the replay client started streaming the bar type
    stopping_wall: int | None  # the node began to stop
    last_wall: int | None  # the log's last line
    bars_logged: int  # bars of the bar type the strategy logged
    paused: tuple[tuple[int, int | None], ...] = ()  # (DEGRADED, back RUNNING) of the strategy

    @property
    def origin_wall(self) -> int | None:
        """When the replay emitted its first record: the exact stamp of the first bar if the
        strategy logs its bars, else the moment the stream was subscribed."""
        return self.first_bar_wall if self.first_bar_wall is not None else self.subscribed_wall

    @property
    def end_wall(self) -> int | None:
        """The last moment the strategy traded: the stop, else the last line."""
        return self.stopping_wall if self.stopping_wall is not None else self.last_wall

    @property
    def last_traded_wall(self) -> int | None:
        """The stamp of the last bar the strategy traded on, where the window it traded ends.

        The strategy's last logged bar, not the stop: the stop comes any time up to a bar
        later, and read as data time it can fall into the next bar, which the engine never
        saw and its close-out never filled on (a fill one bar "early"). A strategy paused at
        the end or logging no bars leaves only the stop to go by."""
        paused_at_end = bool(self.paused) and self.paused[-1][1] is None
        if self.last_bar_wall is None or paused_at_end:
            return self.end_wall
        return self.last_bar_wall


@dataclass(frozen=True)
class EngineTrades:
    """The fills of one strategy and the replay's timing, from one engine log."""

    fills: pd.DataFrame  # FILL_COLUMNS, in the order they happened
    timing: ReplayTiming
    lines: int
    unreadable_fills: int  # OrderFilled lines that did not parse (reported, never guessed)


def _wall_ns(text: str) -> int:
    return pd.Timestamp(text).value


def _fields(message: str, event: str) -> dict[str, str] | None:
    start = message.find(event + "(")
    if start < 0:
        return None
    body = message[start + len(event) + 1:]
    return {k: v.strip() for k, v in _FIELD.findall(body)}


def _number(text: str) -> float:
    return float(text.replace("_", ""))


def read_engine_trades(path: Path, *, strategy_component: str, bar_type: str) -> EngineTrades:
    """Parse ``path`` for the fills the component ``strategy_component`` (the strategy's class
    name, as NautilusTrader names its logger) received and for the replay's timing of
    ``bar_type``."""
    rows, unreadable, lines = [], 0, 0
    first_bar = last_bar = subscribed = stopping = last = None
    bars = 0
    paused: list[list] = []
    seen_trades: set[str] = set()
    subscribed_text = f"Subscribed {bar_type} bars"
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            lines += 1
            match = _LINE.match(raw.rstrip("\n"))
            if match is None:
                continue
            wall, component, message = match["wall"], match["component"], match["message"]
            last = wall
            own = component == strategy_component or component.startswith(
                strategy_component + "-")
            if own and message.startswith("Bar("):
                bar = _BAR.match(message)
                if bar is not None and bar["bar_type"] == bar_type:
                    bars += 1
                    last_bar = int(bar["ts"])
                    if first_bar is None:
                        first_bar = last_bar
            elif own and message == "DEGRADED":  # NautilusTrader's paused state
                paused.append([_wall_ns(wall), None])
            elif own and message == "RUNNING" and paused and paused[-1][1] is None:
                paused[-1][1] = _wall_ns(wall)
            elif own and "OrderFilled(" in message:
                row = _fill_row(message, wall, component)
                if row is None:
                    unreadable += 1
                elif row["trade_id"] not in seen_trades:
                    seen_trades.add(row["trade_id"])
                    rows.append(row)
            elif subscribed is None and component.startswith("DataClient") and \
                    message.strip() == subscribed_text:
                subscribed = _wall_ns(wall)
            elif stopping is None and component == "TradingNode" and message == "STOPPING":
                stopping = _wall_ns(wall)
    fills = pd.DataFrame(rows, columns=FILL_COLUMNS)
    timing = ReplayTiming(first_bar, last_bar, subscribed, stopping,
                          _wall_ns(last) if last is not None else None, bars,
                          tuple((start, end) for start, end in paused))
    return EngineTrades(fills, timing, lines, unreadable)


def _fill_row(message: str, wall: str, component: str) -> dict | None:
    fields = _fields(message, "OrderFilled")
    try:
        price = _MONEY.match(fields["last_px"])
        commission = _MONEY.match(fields["commission"])
        return {
            "ts_wall": int(fields["ts_event"]), "component": component,
            "trade_id": fields["trade_id"], "client_order_id": fields["client_order_id"],
            "instrument_id": fields["instrument_id"], "side": fields["order_side"],
            "order_type": fields["order_type"], "quantity": _number(fields["last_qty"]),
            "price": _number(price.group(1)), "commission": _number(commission.group(1)),
            "commission_currency": commission.group(2) or "",
            "liquidity_side": fields.get("liquidity_side", ""),
        }
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
