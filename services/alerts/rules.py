"""Alert rules: what each one watches, its built-in settings, and how an event triggers it.

A rule looks at one kind of hub event and returns the alerts it raises, each with a dedup key
(rule + engine + subject: an instrument, a strategy, a limit). Pure functions over event data,
so they are tested without threads, a database or a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services import events

CHANNELS = ("webhook", "email")


@dataclass(frozen=True)
class AlertRule:
    name: str
    title: str
    unit: str  # what ``threshold`` is in ("" when the rule has none)
    severity: str
    enabled: bool
    threshold: float | None
    cooldown_s: int
    channels: tuple[str, ...] = CHANNELS
    level: bool = False  # a condition that holds: raised when it starts to hold

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "unit": self.unit,
                "severity": self.severity, "enabled": self.enabled, "threshold": self.threshold,
                "cooldown_s": self.cooldown_s, "channels": list(self.channels)}


DEFAULT_RULES: dict[str, AlertRule] = {r.name: r for r in (
    AlertRule("engine_error", "Engine in Error", "", "critical", True, None, 300),
    AlertRule("risk_breach", "Risk limit breached", "", "critical", True, None, 300),
    AlertRule("drawdown", "Drawdown above X % of the day's peak equity", "%", "warning", True,
              5.0, 900, level=True),
    AlertRule("cpu", "CPU above X % of the engine's limit", "%", "warning", True, 90.0, 900,
              level=True),
    AlertRule("memory", "Memory above X % of the engine's limit", "%", "warning", True, 90.0,
              900, level=True),
    AlertRule("no_data", "No market data for N seconds", "s", "warning", True, 60.0, 900,
              level=True),
    AlertRule("strategy_stopped", "A strategy stopped", "", "warning", True, None, 300),
)}


@dataclass(frozen=True)
class Trigger:
    """What a rule saw: ``active`` False clears a level condition for ``key``."""

    rule: str
    key: str
    session_id: str
    message: str
    active: bool = True


@dataclass
class RuleState:
    """What the rules remember between events: strategies' last states, engines' limits."""

    strategies: dict[str, dict[str, str]] = field(default_factory=dict)
    cpu_limits: dict[str, float] = field(default_factory=dict)


def evaluate(rules: dict[str, AlertRule], state: RuleState, event: events.Event,
             name: str) -> list[Trigger]:
    """The triggers ``event`` raises (or clears) under the enabled ``rules``; ``name`` is the
    engine's name for messages."""
    found: list[Trigger] = []
    session, data = event.source, event.data

    def on(rule: str) -> AlertRule | None:
        candidate = rules.get(rule)
        return candidate if candidate is not None and candidate.enabled else None

    if event.type == events.ENGINE_STATUS and (engine := data.get("engine")):
        state.cpu_limits[session] = float(engine.get("cpu_limit") or 0)
        if engine.get("state") == "Error" and on("engine_error"):
            error = (engine.get("error") or "no reason given").splitlines()[0]
            found.append(Trigger("engine_error", f"engine_error:{session}", session,
                                 f"Engine '{name}' is in Error: {error}"))
    elif event.type == events.ENGINE_STATUS and (status := data.get("status")):
        found += _from_status(rules, state, session, status, name, on)
    elif event.type == events.RISK_EVENTS and data.get("type") == "RiskLimitBreached" \
            and on("risk_breach"):
        breach = data.get("breach") or {}
        found.append(Trigger("risk_breach", f"risk_breach:{session}:{breach.get('key')}",
                             session, f"Engine '{name}': {data.get('message')}"))
    elif event.type == events.RESOURCE_METRICS:
        found += _from_resources(state, session, data, name, on)
    return found


def _from_status(rules, state: RuleState, session: str, status: dict, name: str, on) -> list:
    found = []
    rule = on("drawdown")
    drawdown = (status.get("risk") or {}).get("drawdown_pct")
    if rule and drawdown is not None:
        found.append(Trigger("drawdown", f"drawdown:{session}", session,
                             f"Engine '{name}': drawdown {drawdown:.2f} % of today's peak "
                             f"equity is above {rule.threshold:g} %",
                             active=drawdown > rule.threshold))
    rule = on("no_data")
    for instrument, health in ((status.get("feed") or {}).get("instruments") or {}).items():
        if rule and health.get("age_s") is not None:
            found.append(Trigger("no_data", f"no_data:{session}:{instrument}", session,
                                 f"Engine '{name}': no data for {instrument} for "
                                 f"{health['age_s']:.0f} s (limit {rule.threshold:g} s)",
                                 active=health["age_s"] > rule.threshold))
    strategies = status.get("strategies") or {}
    before = state.strategies.get(session, {})
    if on("strategy_stopped"):
        for strategy, now in strategies.items():
            was = before.get(strategy)
            if now in ("STOPPED", "FAULTED") and was not in (None, "STOPPED", "FAULTED"):
                found.append(Trigger("strategy_stopped", f"strategy_stopped:{session}:{strategy}",
                                     session, f"Engine '{name}': strategy {strategy} is {now} "
                                              f"(was {was})"))
    state.strategies[session] = dict(strategies)
    return found


def _from_resources(state: RuleState, session: str, data: dict, name: str, on) -> list:
    found = []
    rule = on("cpu")
    cores = state.cpu_limits.get(session)
    if rule and cores and data.get("cpu_usage") is not None:
        share = float(data["cpu_usage"]) / cores  # cpu_usage: % of one core
        found.append(Trigger("cpu", f"cpu:{session}", session,
                             f"Engine '{name}': CPU at {share:.0f} % of its limit "
                             f"({cores:g} cores), above {rule.threshold:g} %",
                             active=share > rule.threshold))
    rule = on("memory")
    if rule and data.get("memory_limit") and data.get("memory_usage") is not None:
        share = 100.0 * float(data["memory_usage"]) / float(data["memory_limit"])
        found.append(Trigger("memory", f"memory:{session}", session,
                             f"Engine '{name}': memory at {share:.0f} % of its limit "
                             f"({float(data['memory_limit']) / 2**20:.0f} MiB), above "
                             f"{rule.threshold:g} %", active=share > rule.threshold))
    return found
