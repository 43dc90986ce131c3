"""Risk limits: validation of every bad value, and breaches computed from measures."""

from __future__ import annotations

import pytest

from services.engine_runtime.risk import (
    LIMITS,
    RiskBook,
    apply_settings,
    default_limits,
    is_looser,
    parse_section,
    stricter,
)

NOON = 1_717_243_200.0  # 2024-06-01 12:00:00 UTC
NEXT_DAY = NOON + 86_400


def _book(**values) -> RiskBook:
    limits, problems = apply_settings(default_limits(), values)
    assert problems == []
    return RiskBook(limits, currency="USDT")


def test_every_limit_is_off_by_default_with_its_documented_action():
    # Act
    limits = default_limits()

    # Assert
    assert set(limits) == {"max_position", "max_gross_exposure", "max_daily_loss",
                           "max_drawdown", "max_orders_per_minute"}
    assert all(limit.value is None for limit in limits.values())
    assert limits["max_daily_loss"].action == "HALTED" and limits["max_daily_loss"].cancel_orders
    assert limits["max_position"].action == "REDUCING"
    assert not limits["max_position"].cancel_orders


def test_settings_change_value_action_and_cancel_and_accept_the_risk_prefix():
    # Act
    limits, problems = apply_settings(default_limits(), {
        "risk.max_daily_loss": "500", "max_daily_loss.action": "reducing",
        "max_position.cancel_orders": "yes", "max_orders_per_minute": 30})

    # Assert
    assert problems == []
    assert limits["max_daily_loss"].value == 500.0
    assert limits["max_daily_loss"].action == "REDUCING"
    assert limits["max_position"].cancel_orders is True
    assert limits["max_orders_per_minute"].value == 30.0


@pytest.mark.parametrize("value", ["0", "off", "", "none", 0])
def test_zero_or_off_turns_a_limit_off(value):
    limits, _ = apply_settings(default_limits(), {"max_drawdown": "100"})

    # Act
    limits, problems = apply_settings(limits, {"max_drawdown": value})

    # Assert
    assert problems == [] and limits["max_drawdown"].value is None


@pytest.mark.parametrize("key, value, message", [
    ("max_daily_loss", "abc", "risk.max_daily_loss: must be a number (0 or off: no limit), "
                              "was 'abc'"),
    ("max_daily_loss", "-5", "risk.max_daily_loss: must be a positive number"),
    ("max_daily_loss", "inf", "risk.max_daily_loss: must be a positive number"),
    ("max_orders_per_minute", "2.5", "risk.max_orders_per_minute: must be a whole number of "
                                     "orders, was '2.5'"),
    ("max_drawdown.action", "STOP", "risk.max_drawdown.action: must be REDUCING or HALTED, "
                                    "was 'STOP'"),
    ("max_drawdown.cancel_orders", "maybe", "risk.max_drawdown.cancel_orders: must be true or "
                                            "false, was 'maybe'"),
    ("max_loss", "5", "risk.max_loss: unknown risk limit (known: max_position"),
    ("max_position.size", "5", "risk.max_position.size: unknown setting 'size'"),
])
def test_bad_settings_give_one_line_naming_the_value(key, value, message):
    # Act
    limits, problems = apply_settings(default_limits(), {key: value})

    # Assert
    assert len(problems) == 1 and problems[0].startswith(message)
    assert limits == default_limits()  # nothing half applied


def test_a_template_section_takes_numbers_or_objects():
    # Act
    limits, problems = parse_section({"max_daily_loss": 250,
                                      "max_drawdown": {"value": 100, "action": "REDUCING",
                                                       "cancel_orders": False}})

    # Assert
    assert problems == []
    assert limits["max_daily_loss"].value == 250
    assert (limits["max_drawdown"].value, limits["max_drawdown"].action,
            limits["max_drawdown"].cancel_orders) == (100, "REDUCING", False)


def test_a_malformed_template_section_is_reported():
    _, problems = parse_section(["max_daily_loss"])
    assert problems == ["risk: must be an object of limits, was ['max_daily_loss']"]


def test_daily_loss_counts_from_the_first_equity_of_the_day_and_breaches_once():
    # Arrange
    book = _book(max_daily_loss="100")
    assert book.evaluate(NOON, {}, 0.0, 10_000.0) == []

    # Act
    first = book.evaluate(NOON + 60, {}, 0.0, 9_899.0)   # lost 101
    again = book.evaluate(NOON + 61, {}, 0.0, 9_850.0)   # still breached: not new

    # Assert
    assert [b.limit for b in first] == ["max_daily_loss"]
    assert first[0].value == pytest.approx(101.0) and first[0].threshold == 100.0
    assert first[0].message == ("loss today 101.00 USDT is above max_daily_loss 100.00 USDT: "
                                "trading HALTED, open orders canceled")
    assert again == []
    assert book.required_state() == "HALTED"


def test_a_daily_loss_that_recovers_stays_breached_until_raised_above_the_days_worst():
    # Arrange: lose 150 (limit 100), then win it back
    book = _book(max_daily_loss="100")
    book.evaluate(NOON, {}, 0.0, 10_000.0)
    book.evaluate(NOON + 1, {}, 0.0, 9_850.0)

    # Act
    recovered = book.evaluate(NOON + 2, {}, 0.0, 10_010.0)
    state_recovered = book.required_state()
    limits, _ = apply_settings(book.limits, {"max_daily_loss": "140"})
    book.update_limits(limits)
    book.evaluate(NOON + 3, {}, 0.0, 10_010.0)
    state_under_worst = book.required_state()
    limits, _ = apply_settings(book.limits, {"max_daily_loss": "160"})
    book.update_limits(limits)
    book.evaluate(NOON + 4, {}, 0.0, 10_010.0)

    # Assert
    assert recovered == [] and state_recovered == "HALTED"
    assert book.values["max_daily_loss"] == 0.0  # shown: the loss now
    assert book.snapshot()["worst_today"]["max_daily_loss"] == pytest.approx(150.0)
    assert state_under_worst == "HALTED"  # 140 is still below the day's worst 150
    assert book.required_state() == "ACTIVE"


def test_a_new_utc_day_starts_the_daily_loss_again():
    # Arrange
    book = _book(max_daily_loss="100")
    book.evaluate(NOON, {}, 0.0, 10_000.0)
    book.evaluate(NOON + 60, {}, 0.0, 9_800.0)
    assert book.required_state() == "HALTED"

    # Act
    new = book.evaluate(NEXT_DAY, {}, 0.0, 9_800.0)

    # Assert
    assert new == [] and book.required_state() == "ACTIVE"
    assert book.day_start_equity == 9_800.0


def test_drawdown_is_measured_from_the_peak_of_the_day():
    # Arrange: up 500 to a peak, then down 300 from it (still 200 above the start)
    book = _book(max_drawdown="250", max_daily_loss="1000")
    book.evaluate(NOON, {}, 0.0, 10_000.0)
    book.evaluate(NOON + 1, {}, 0.0, 10_500.0)

    # Act
    breaches = book.evaluate(NOON + 2, {}, 0.0, 10_200.0)

    # Assert
    assert [b.limit for b in breaches] == ["max_drawdown"]
    snapshot = book.snapshot()
    assert snapshot["values"]["max_drawdown"] == pytest.approx(300.0)
    assert snapshot["values"]["max_daily_loss"] == 0.0
    assert snapshot["drawdown_pct"] == pytest.approx(100 * 300 / 10_500)


def test_position_limit_is_per_instrument_and_rearms_when_back_under():
    # Arrange
    book = _book(max_position="1")

    # Act
    over = book.evaluate(NOON, {"BTC.X": -1.5, "ETH.X": 0.5}, None, None)
    state_over = book.required_state()
    back = book.evaluate(NOON + 1, {"BTC.X": 0.5, "ETH.X": 0.5}, None, None)
    state_back = book.required_state()
    over_again = book.evaluate(NOON + 2, {"BTC.X": 2.0}, None, None)

    # Assert
    assert [b.key for b in over] == ["max_position:BTC.X"]
    assert over[0].action == "REDUCING" and over[0].value == 1.5
    assert (state_over, back, state_back) == ("REDUCING", [], "ACTIVE")
    assert [b.key for b in over_again] == ["max_position:BTC.X"]


def test_orders_per_minute_counts_a_sliding_minute():
    # Arrange
    book = _book(max_orders_per_minute="3")
    for offset in (0, 10, 20):
        book.record_order(NOON + offset)

    # Act
    at_limit = book.evaluate(NOON + 30, {}, None, None)
    book.record_order(NOON + 40)
    over = book.evaluate(NOON + 41, {}, None, None)
    later = book.evaluate(NOON + 75, {}, None, None)  # the first two left the window

    # Assert
    assert at_limit == []
    assert [b.limit for b in over] == ["max_orders_per_minute"]
    assert over[0].message.startswith("4 orders in the last minute is above "
                                      "max_orders_per_minute 3")
    assert later == [] and book.values["max_orders_per_minute"] == 2.0


def test_a_breached_limit_blocks_looser_trading_states_only():
    # Arrange
    book = _book(max_position="1")
    book.evaluate(NOON, {"BTC.X": 2.0}, None, None)

    # Act / Assert
    assert book.blocking("ACTIVE").limit == "max_position"
    assert book.blocking("REDUCING") is None
    assert book.blocking("HALTED") is None


def test_raising_a_limit_clears_its_breach_at_the_next_evaluation():
    # Arrange
    book = _book(max_position="1")
    book.evaluate(NOON, {"BTC.X": 2.0}, None, None)

    # Act
    limits, _ = apply_settings(book.limits, {"max_position": "5"})
    book.update_limits(limits)
    book.evaluate(NOON + 1, {"BTC.X": 2.0}, None, None)

    # Assert
    assert book.required_state() == "ACTIVE" and book.snapshot()["breached"] == []


def test_pre_trade_check_refuses_growing_orders_only():
    # Arrange
    book = _book(max_position="1", max_gross_exposure="50000")
    book.evaluate(NOON, {"BTC.X": 0.8}, 40_000.0, None)

    # Act
    grow = book.pre_trade_problem("BTC.X", 0.8, 1.2, 16_000.0)
    flip = book.pre_trade_problem("BTC.X", 0.8, -1.1, 76_000.0)
    shrink = book.pre_trade_problem("BTC.X", 0.8, 0.3, None)
    exposure = book.pre_trade_problem("BTC.X", 0.8, 1.0, 12_000.0)

    # Assert
    assert grow == "the order would make the BTC.X position 1.2, above max_position 1"
    assert flip == "the order would make the BTC.X position -1.1, above max_position 1"
    assert shrink is None
    assert exposure == ("the order would raise the gross exposure to 52,000.00 USDT, above "
                        "max_gross_exposure 50,000.00 USDT")


def test_trading_states_order_from_active_to_halted():
    assert stricter("ACTIVE", "REDUCING") == "REDUCING"
    assert stricter("HALTED", "REDUCING") == "HALTED"
    assert is_looser("ACTIVE", "HALTED") and not is_looser("HALTED", "REDUCING")


def test_every_limit_documents_its_unit():
    assert all(kind.help and kind.unit for kind in LIMITS.values())
