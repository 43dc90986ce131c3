"""Alert rules as pure functions of hub events."""

from __future__ import annotations

from dataclasses import replace

from services import events
from services.alerts.rules import DEFAULT_RULES, RuleState, evaluate


def _event(type_: str, data: dict, source: str = "s1") -> events.Event:
    return events.Event(1, type_, source, 0.0, data)


def _fire(event, rules=DEFAULT_RULES, state=None):
    return evaluate(rules, state or RuleState(), event, "paper-btc")


def test_an_engine_in_error_raises_with_the_first_line_of_its_error():
    triggers = _fire(_event(events.ENGINE_STATUS, {"engine": {
        "state": "Error", "error": "killed: out of memory\nLast log lines: ...", "cpu_limit": 1}}))
    assert [(t.rule, t.key, t.message) for t in triggers] == [
        ("engine_error", "engine_error:s1", "Engine 'paper-btc' is in Error: killed: out of memory")]


def test_a_risk_breach_raises_per_limit_key():
    triggers = _fire(_event(events.RISK_EVENTS, {
        "type": "RiskLimitBreached", "message": "loss today 101.00 USDT is above ...",
        "breach": {"key": "max_daily_loss"}}))
    assert [(t.rule, t.key) for t in triggers] == [("risk_breach", "risk_breach:s1:max_daily_loss")]


def test_drawdown_and_no_data_are_levels_that_also_clear():
    # Arrange
    status = {"risk": {"drawdown_pct": 6.5},
              "feed": {"instruments": {"BTC.X": {"age_s": 75.0}, "ETH.X": {"age_s": 2.0}}}}

    # Act
    triggers = {t.key: t for t in _fire(_event(events.ENGINE_STATUS, {"status": status}))}

    # Assert
    assert triggers["drawdown:s1"].active
    assert triggers["drawdown:s1"].message == ("Engine 'paper-btc': drawdown 6.50 % of today's "
                                               "peak equity is above 5 %")
    assert triggers["no_data:s1:BTC.X"].active
    assert not triggers["no_data:s1:ETH.X"].active


def test_cpu_is_measured_against_the_engines_cpu_limit():
    # Arrange: 1.9 of one core on a 2-core limit is 95 % of the limit
    state = RuleState(cpu_limits={"s1": 2.0})

    # Act
    triggers = _fire(_event(events.RESOURCE_METRICS, {"cpu_usage": 190.0, "memory_usage": 100.0,
                                                      "memory_limit": 1000.0}), state=state)

    # Assert
    by_rule = {t.rule: t for t in triggers}
    assert by_rule["cpu"].active and "CPU at 95 % of its limit (2 cores)" in by_rule["cpu"].message
    assert not by_rule["memory"].active


def test_a_strategy_stopping_raises_once_on_the_transition():
    state = RuleState()
    running = _event(events.ENGINE_STATUS, {"status": {"strategies": {"EMA-000": "RUNNING"}}})
    stopped = _event(events.ENGINE_STATUS, {"status": {"strategies": {"EMA-000": "STOPPED"}}})
    assert _fire(running, state=state) == []
    first = _fire(stopped, state=state)
    again = _fire(stopped, state=state)
    assert [t.message for t in first] == [
        "Engine 'paper-btc': strategy EMA-000 is STOPPED (was RUNNING)"]
    assert again == []


def test_a_disabled_rule_raises_nothing():
    rules = {**DEFAULT_RULES, "risk_breach": replace(DEFAULT_RULES["risk_breach"], enabled=False)}
    assert _fire(_event(events.RISK_EVENTS, {"type": "RiskLimitBreached", "breach": {}}),
                 rules=rules) == []
