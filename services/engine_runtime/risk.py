"""Risk limits NautilusTrader's risk engine lacks, enforced inside the engine (stdlib only).

NautilusTrader checks each order (price, quantity, notional per order, submit rate); it has no
limit on the position, the gross exposure, the day's loss or drawdown, or orders per minute.
This module defines those limits, validates them (the workbench does so before an engine
starts, the engine again when an approver changes them) and evaluates them: :class:`RiskBook`
takes measured values and says which limits are breached and which trading state that
requires. The engine-side guard (services.engine_runtime.guard) feeds it from the portfolio and
applies the result through the risk engine's own ``set_trading_state``, so the limits hold when
the workbench is down.

Money limits are in the engine's account currency (paper and sandbox engines: the settlement
currency of the traded instrument); the day is the UTC day. The daily loss and the drawdown
limits hold for the rest of the day once breached (a loss that recovers does not re-open
trading): they are measured by the worst value of the day, so only the next UTC day or an
approver raising the limit above that worst value clears them. The other limits clear when the
value is back under the limit.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime

REDUCING, HALTED, ACTIVE = "REDUCING", "HALTED", "ACTIVE"
ACTIONS = (REDUCING, HALTED)
_STRICTNESS = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
PREFIX = "risk."


@dataclass(frozen=True)
class LimitKind:
    help: str
    unit: str
    default_action: str
    default_cancel: bool
    whole: bool = False


LIMITS: dict[str, LimitKind] = {
    "max_position": LimitKind(
        "largest absolute net position of any one instrument", "instrument units",
        REDUCING, False),
    "max_gross_exposure": LimitKind(
        "sum of the absolute net exposures of every instrument", "account currency",
        REDUCING, False),
    "max_daily_loss": LimitKind(
        "fall of equity since the first equity of the UTC day", "account currency",
        HALTED, True),
    "max_drawdown": LimitKind(
        "fall of equity from the day's peak equity", "account currency", HALTED, True),
    "max_orders_per_minute": LimitKind(
        "orders submitted in the last 60 s by all strategies together", "orders",
        HALTED, True, whole=True),
}
_OFF = ("", "off", "none", "null", "0")
DAILY = ("max_daily_loss", "max_drawdown")  # measured by the day's worst value


@dataclass(frozen=True)
class RiskLimit:
    """One limit: ``value`` None means off; a breach switches trading to ``action``."""

    name: str
    value: float | None
    action: str
    cancel_orders: bool

    def to_json(self) -> dict:
        return {"value": self.value, "action": self.action, "cancel_orders": self.cancel_orders}


@dataclass(frozen=True)
class Breach:
    limit: str
    key: str  # the limit, plus ":INSTRUMENT" for per-instrument limits
    value: float
    threshold: float
    action: str
    cancel_orders: bool
    message: str

    def to_json(self) -> dict:
        return {"limit": self.limit, "key": self.key, "value": self.value,
                "threshold": self.threshold, "action": self.action,
                "cancel_orders": self.cancel_orders, "message": self.message}


def default_limits() -> dict[str, RiskLimit]:
    """Every limit off, with its default action."""
    return {name: RiskLimit(name, None, kind.default_action, kind.default_cancel)
            for name, kind in LIMITS.items()}


def limits_to_json(limits: dict[str, RiskLimit]) -> dict:
    return {name: limit.to_json() for name, limit in limits.items()}


def _value(name: str, raw, label: str) -> tuple[float | None, str | None]:
    kind = LIMITS[name]
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _OFF):
        return None, None
    if isinstance(raw, bool):
        return None, f"{label}: must be a number (0 or off: no limit), was {raw!r}"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None, f"{label}: must be a number (0 or off: no limit), was {raw!r}"
    if not math.isfinite(value) or value < 0:
        return None, f"{label}: must be a positive number (0 or off: no limit), was {raw!r}"
    if value == 0:
        return None, None
    if kind.whole and value != int(value):
        return None, f"{label}: must be a whole number of {kind.unit}, was {raw!r}"
    return value, None


def _action(raw, label: str) -> tuple[str | None, str | None]:
    text = str(raw).strip().upper()
    if text not in ACTIONS:
        return None, f"{label}: must be REDUCING or HALTED, was {raw!r}"
    return text, None


def _flag(raw, label: str) -> tuple[bool | None, str | None]:
    if isinstance(raw, bool):
        return raw, None
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True, None
    if text in ("false", "no", "0", "off"):
        return False, None
    return None, f"{label}: must be true or false, was {raw!r}"


def _unknown(name: str, label: str) -> str:
    return f"{label}: unknown risk limit (known: {', '.join(LIMITS)})"


def parse_section(section: dict | None) -> tuple[dict[str, RiskLimit], list[str]]:
    """Limits from a template's or a stored config's ``risk`` section.

    Each entry is a number (the value) or ``{"value": ..., "action": ..., "cancel_orders": ...}``;
    limits not named stay off. Returns the limits and every problem found."""
    limits, problems = default_limits(), []
    if section is None:
        return limits, problems
    if not isinstance(section, dict):
        return limits, [f"risk: must be an object of limits, was {section!r}"]
    for name, entry in section.items():
        label = f"{PREFIX}{name}"
        if name not in LIMITS:
            problems.append(_unknown(name, label))
            continue
        entry = entry if isinstance(entry, dict) else {"value": entry}
        settings = {f"{name}.{key}" if key != "value" else name: raw for key, raw in entry.items()}
        limits, found = apply_settings(limits, settings)
        problems.extend(found)
    return limits, problems


def apply_settings(limits: dict[str, RiskLimit], settings: dict) -> tuple[dict[str, RiskLimit],
                                                                           list[str]]:
    """Apply ``NAME=VALUE`` settings: ``max_daily_loss=500``, ``max_daily_loss.action=HALTED``,
    ``max_daily_loss.cancel_orders=false`` (a ``risk.`` prefix is allowed). Returns the new
    limits (``limits`` is not changed) and every problem found."""
    updated, problems = dict(limits), []
    for key, raw in settings.items():
        bare = key[len(PREFIX):] if key.startswith(PREFIX) else key
        name, _, field = bare.partition(".")
        label = f"{PREFIX}{bare}"
        if name not in LIMITS:
            problems.append(_unknown(name, label))
            continue
        current = updated[name]
        if field == "":
            value, problem = _value(name, raw, label)
            change = {"value": value}
        elif field == "action":
            value, problem = _action(raw, label)
            change = {"action": value}
        elif field == "cancel_orders":
            value, problem = _flag(raw, label)
            change = {"cancel_orders": value}
        else:
            problems.append(f"{label}: unknown setting {field!r} (known: value, action, "
                            "cancel_orders)")
            continue
        if problem:
            problems.append(problem)
        else:
            updated[name] = replace(current, **change)
    return updated, problems


def stricter(a: str, b: str) -> str:
    """The stricter of two trading states."""
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


def is_looser(state: str, than: str) -> bool:
    return _STRICTNESS[state] < _STRICTNESS[than]


def _amount(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}".strip()


class RiskBook:
    """Measures against limits; edge-triggered breaches, re-armed when the value recovers.

    Not thread-safe: the engine calls it from its event loop only.
    """

    def __init__(self, limits: dict[str, RiskLimit], currency: str = "") -> None:
        self.limits = dict(limits)
        self.currency = currency
        self.day: str | None = None
        self.day_start_equity: float | None = None
        self.peak_equity: float | None = None
        self.equity: float | None = None
        self.values: dict[str, float | None] = {name: None for name in LIMITS}
        self.positions: dict[str, float] = {}
        self.worst: dict[str, float] = {}  # the day's worst daily loss and drawdown
        self.active: dict[str, Breach] = {}
        self._orders: deque[float] = deque()

    def update_limits(self, limits: dict[str, RiskLimit]) -> None:
        self.limits = dict(limits)
        # A limit turned off or raised re-arms at the next evaluation.

    def record_order(self, ts: float) -> None:
        self._orders.append(ts)

    def orders_last_minute(self, now: float) -> int:
        while self._orders and self._orders[0] <= now - 60.0:
            self._orders.popleft()
        return len(self._orders)

    def evaluate(self, now: float, positions: dict[str, float], gross_exposure: float | None,
                 equity: float | None) -> list[Breach]:
        """Take the current measures; return the breaches that are new since the last call."""
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        if equity is not None:
            if day != self.day or self.day_start_equity is None:
                self.day, self.day_start_equity, self.peak_equity = day, equity, equity
                self.worst = {}
            self.peak_equity = max(self.peak_equity, equity)
            self.equity = equity
        self.positions = {k: abs(v) for k, v in positions.items()}
        loss = (max(0.0, self.day_start_equity - equity)
                if equity is not None and self.day_start_equity is not None else None)
        drawdown = (max(0.0, self.peak_equity - equity)
                    if equity is not None and self.peak_equity is not None else None)
        self.values = {
            "max_position": max(self.positions.values(), default=0.0),
            "max_gross_exposure": gross_exposure,
            "max_daily_loss": loss,
            "max_drawdown": drawdown,
            "max_orders_per_minute": float(self.orders_last_minute(now)),
        }
        measured: dict[str, tuple[str, float]] = {}
        for instrument, quantity in self.positions.items():
            measured[f"max_position:{instrument}"] = ("max_position", quantity)
        for name in ("max_gross_exposure", "max_daily_loss", "max_drawdown",
                     "max_orders_per_minute"):
            if self.values[name] is not None:
                value = self.values[name]
                if name in DAILY:
                    value = self.worst[name] = max(value, self.worst.get(name, 0.0))
                measured[name] = (name, value)
        new = []
        still = {}
        for key, (name, value) in measured.items():
            limit = self.limits[name]
            if limit.value is None or value <= limit.value:
                continue
            breach = self.active.get(key) or self._breach(key, limit, value)
            if key not in self.active:
                new.append(breach)
            still[key] = breach
        self.active = still
        return new

    def _breach(self, key: str, limit: RiskLimit, value: float) -> Breach:
        name = limit.name
        if name == "max_position":
            what = (f"position {value:g} in {key.partition(':')[2]} is above max_position "
                    f"{limit.value:g}")
        elif name == "max_orders_per_minute":
            what = (f"{value:.0f} orders in the last minute is above max_orders_per_minute "
                    f"{limit.value:.0f}")
        else:
            noun = {"max_gross_exposure": "gross exposure", "max_daily_loss": "loss today",
                    "max_drawdown": "drawdown from today's peak"}[name]
            what = (f"{noun} {_amount(value, self.currency)} is above {name} "
                    f"{_amount(limit.value, self.currency)}")
        return Breach(name, key, value, float(limit.value), limit.action, limit.cancel_orders,
                      f"{what}: trading {limit.action}"
                      + (", open orders canceled" if limit.cancel_orders else ""))

    def required_state(self) -> str:
        """The strictest trading state the breached limits demand (ACTIVE when none is)."""
        state = ACTIVE
        for breach in self.active.values():
            state = stricter(state, breach.action)
        return state

    def blocking(self, wanted: str) -> Breach | None:
        """A breached limit that forbids switching trading to ``wanted``, if any."""
        for breach in self.active.values():
            if is_looser(wanted, breach.action):
                return breach
        return None

    def pre_trade_problem(self, instrument: str, position_before: float, position_after: float,
                          exposure_change: float | None) -> str | None:
        """Why a manual order would breach a limit right away, or None (orders that reduce the
        position never do)."""
        if abs(position_after) <= abs(position_before):
            return None
        limit = self.limits["max_position"]
        if limit.value is not None and abs(position_after) > limit.value:
            return (f"the order would make the {instrument} position {position_after:g}, above "
                    f"max_position {limit.value:g}")
        limit = self.limits["max_gross_exposure"]
        gross = self.values.get("max_gross_exposure") or 0.0
        if limit.value is not None and exposure_change is not None and exposure_change > 0 \
                and gross + exposure_change > limit.value:
            return (f"the order would raise the gross exposure to "
                    f"{_amount(gross + exposure_change, self.currency)}, above "
                    f"max_gross_exposure {_amount(limit.value, self.currency)}")
        return None

    def snapshot(self) -> dict:
        """Limits, their current values and the breached ones, for the status stream."""
        peak, equity = self.peak_equity, self.equity
        return {
            "currency": self.currency,
            "limits": limits_to_json(self.limits),
            "values": dict(self.values),
            "positions": dict(self.positions),
            "worst_today": dict(self.worst),
            "equity": equity,
            "day_start_equity": self.day_start_equity,
            "peak_equity": peak,
            "drawdown_pct": (100.0 * (peak - equity) / peak
                             if peak and equity is not None and peak > 0 else None),
            "breached": [b.to_json() for b in self.active.values()],
            "required_state": self.required_state(),
        }
