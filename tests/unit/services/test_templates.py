"""Tests of services/templates.py: loading, validating and using engine/strategy templates."""

from __future__ import annotations

import importlib
import json
import shutil
from decimal import Decimal

import msgspec
import pytest

from services.errors import TemplateError, ValidationError
from services.templates import (
    TemplateService,
    load_backtest_engine_template,
    load_strategy_template,
)

SHIPPED_STRATEGIES = ("bb_mean_reversion", "ema_cross", "ema_cross_bracket", "simple_momentum")


def _problems_starting_with(error: ValidationError, prefix: str) -> list[str]:
    return [p for p in error.problems if p.startswith(prefix)]


# -- shipped templates ---------------------------------------------------------------------


def test_template_service_lists_every_shipped_strategy(shipped_templates):
    # Arrange
    service = TemplateService(shipped_templates)

    # Act
    names = service.strategy_names()

    # Assert
    assert names == list(SHIPPED_STRATEGIES)


@pytest.mark.parametrize("name", SHIPPED_STRATEGIES)
def test_every_shipped_strategy_template_loads(shipped_templates, name):
    # Arrange
    service = TemplateService(shipped_templates)

    # Act
    template = service.strategy(name)

    # Assert
    assert template.name == name
    assert template.parameters, "a shipped template should let the user set something"
    assert all(spec.help for spec in template.parameters.values())
    assert template.parameters["trade_size"].default == Decimal("1")


@pytest.mark.parametrize("name", SHIPPED_STRATEGIES)
def test_shipped_strategy_config_decodes_into_its_nautilus_config_class(shipped_templates, name):
    # Arrange
    from nautilus_trader.common.config import msgspec_decoding_hook

    template = TemplateService(shipped_templates).strategy(name)
    module, _, cls_name = template.config_path.partition(":")
    config_cls = getattr(importlib.import_module(module), cls_name)

    # Act
    config = template.strategy_config(
        {}, "EUR/USD.SIM", "EUR/USD.SIM-1-MINUTE-LAST-EXTERNAL", "CurrencyPair")
    decoded = msgspec.json.decode(msgspec.json.encode(config), type=config_cls,
                                  dec_hook=msgspec_decoding_hook)

    # Assert
    assert str(decoded.instrument_id) == "EUR/USD.SIM"
    assert str(decoded.bar_type) == "EUR/USD.SIM-1-MINUTE-LAST-EXTERNAL"
    assert decoded.trade_size == Decimal("100000")  # the CurrencyPair default


def test_shipped_backtest_engine_template_loads(shipped_templates):
    # Arrange
    service = TemplateService(shipped_templates)

    # Act
    engine = service.backtest_engine()

    # Assert
    assert engine.name == "backtest_engine"
    assert engine.parameters["starting_balance"].default == Decimal("1000000")
    assert engine.parameters["oms_type"].choices == ("NETTING", "HEDGING")
    assert engine.venue["oms_type"] == "NETTING"


def test_summaries_of_shipped_templates_report_no_errors(shipped_templates):
    # Arrange
    service = TemplateService(shipped_templates)

    # Act
    summaries = service.summaries()

    # Assert
    assert sorted(s.name for s in summaries) == sorted([*SHIPPED_STRATEGIES, "backtest_engine",
                                                        "paper_trading", "sandbox_engine",
                                                        "live_engine"])
    assert [s.error for s in summaries] == [None] * len(summaries)
    kinds = {s.name: s.kind for s in summaries}
    assert (kinds["paper_trading"], kinds["live_engine"]) == ("engine (paper)", "engine (live)")
    ema = next(s for s in summaries if s.name == "ema_cross")
    assert ema.parameters["trade_size"] == {
        "type": "decimal", "default": "1", "min": "0.000001", "max": "100000000",
        "help": "Order quantity in the instrument's units (coins, currency units or shares).",
        "label": "Trade size", "unit": "instrument units",
    }


# -- malformed files -----------------------------------------------------------------------


def test_invalid_json_names_line_and_column(write_template):
    # Arrange: the value of "title" is missing; '}' is the 12th character of line 2
    path = write_template('{"name": "x",\n  "title": }\n')

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert "not valid JSON" in str(info.value)
    assert "line 2, column 12" in str(info.value)


def test_template_that_is_not_an_object_is_rejected(write_template):
    # Arrange
    path = write_template("[1, 2, 3]")

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert "must hold a JSON object, was list" in str(info.value)


def test_unreadable_template_path_raises_template_error(tmp_path):
    # Arrange
    path = tmp_path / "missing.json"

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert "Cannot read template" in str(info.value)


def test_missing_and_unknown_top_level_keys_are_all_named(write_template, ema_cross_data):
    # Arrange
    del ema_cross_data["strategy_path"]
    del ema_cross_data["parameters"]
    ema_cross_data["colour"] = "blue"
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert "strategy_path: missing" in info.value.problems
    assert "parameters: missing" in info.value.problems
    assert "unknown top-level keys ['colour']" in info.value.problems


def _set(*keys_and_value):
    """Mutation that sets data[k1][k2]...[kn] = value."""
    *keys, value = keys_and_value

    def mutate(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def _delete(*keys):
    def mutate(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


EMA_MODULE = "nautilus_trader.examples.strategies.ema_cross"

BAD_STRATEGY_TEMPLATES = [
    pytest.param(_set("strategy_path", f"{EMA_MODULE}:NoSuchStrategy"),
                 "strategy_path: module", "NoSuchStrategy", id="unknown-strategy-class"),
    pytest.param(_set("strategy_path", "nautilus_trader.no_such_module:EMACross"),
                 "strategy_path: cannot import module", "no_such_module", id="unknown-module"),
    pytest.param(_set("strategy_path", "no_such_package.strategies:EMACross"),
                 "strategy_path: 'no_such_package.strategies' is not in an allowed package",
                 "WORKBENCH_STRATEGY_PACKAGES", id="module-outside-the-allow-list"),
    pytest.param(_set("strategy_path", f"{EMA_MODULE}.EMACross"),
                 "strategy_path: must look like", "EMACross", id="strategy-path-without-colon"),
    pytest.param(_set("strategy_path", f"{EMA_MODULE}:EMACrossConfig"),
                 "strategy_path:", "is not a NautilusTrader Strategy", id="strategy-not-a-strategy"),
    pytest.param(_set("config_path", "nautilus_trader.backtest.config:BacktestEngineConfig"),
                 "config_path:", "is not a NautilusTrader StrategyConfig",
                 id="config-not-a-strategy-config"),
    pytest.param(_set("config_path", f"{EMA_MODULE}:NoSuchConfig"),
                 "config_path: module", "NoSuchConfig", id="unknown-config-class"),
    pytest.param(_set("parameters", "fast_ema_period", "type", "integer"),
                 "parameters.fast_ema_period.type:", "'integer'", id="unknown-parameter-type"),
    pytest.param(_delete("parameters", "fast_ema_period", "default"),
                 "parameters.fast_ema_period.default:", "missing", id="missing-default"),
    pytest.param(_delete("parameters", "fast_ema_period", "help"),
                 "parameters.fast_ema_period.help:", "missing", id="missing-help"),
    pytest.param(_delete("parameters", "slow_ema_period", "max"),
                 "parameters.slow_ema_period.max:", "need bounds", id="numeric-without-max"),
    pytest.param(_set("parameters", "trade_size", "min", None),
                 "parameters.trade_size.min:", "need bounds", id="decimal-without-min"),
    pytest.param(_set("parameters", "fast_ema_period", "min", 5000),
                 "parameters.fast_ema_period:", "min 5000 is above max 1000", id="min-above-max"),
    pytest.param(_set("parameters", "fast_ema_period", "default", 1),
                 "parameters.fast_ema_period:", "must be >= 2, was 1", id="default-below-min"),
    pytest.param(_set("parameters", "slow_ema_period", "default", 9999),
                 "parameters.slow_ema_period:", "must be <= 5000, was 9999", id="default-above-max"),
    pytest.param(_set("parameters", "fast_ema_period", "default", "ten"),
                 "parameters.fast_ema_period:", "must be a whole number", id="default-wrong-type"),
    pytest.param(_set("parameters", "trade_size", "default_by_instrument_class",
                      {"CurrencyPair": "-5"}),
                 "parameters.trade_size.default_by_instrument_class.CurrencyPair:", "must be >=",
                 id="class-default-out-of-bounds"),
    pytest.param(_set("parameters", "fast_ema_period", "step", 1),
                 "parameters.fast_ema_period:", "unknown keys ['step']", id="unknown-parameter-key"),
    pytest.param(_set("parameters", "side", {"type": "choice", "default": "long", "help": "Side."}),
                 "parameters.side.choices:", "non-empty list", id="choice-without-choices"),
    pytest.param(_set("parameters", "side", {"type": "choice", "choices": ["long", "short"],
                                             "default": "both", "help": "Side."}),
                 "parameters.side:", "must be one of long, short", id="choice-default-not-a-choice"),
    pytest.param(_set("parameters", "lookback", {"type": "int", "default": 5, "min": 1, "max": 9,
                                                 "help": "Bars."}),
                 "parameters.lookback:", "EMACrossConfig has no field 'lookback'",
                 id="parameter-not-a-config-field"),
    pytest.param(_set("config", "colour", "blue"),
                 "config.colour:", "EMACrossConfig has no field 'colour'",
                 id="fixed-config-not-a-config-field"),
    pytest.param(_set("config", "request_bars", "sometimes"),
                 "config:", "does not decode into EMACrossConfig", id="fixed-config-does-not-decode"),
    pytest.param(_set("config", ["not", "an", "object"]),
                 "config:", "must be an object, was list", id="fixed-config-not-an-object"),
    pytest.param(_set("constraints", [{"expr": "fast_ema_period <<< slow_ema_period"}]),
                 "constraints[0]:", "expected 'name OP name-or-number'", id="malformed-constraint"),
    pytest.param(_set("constraints", [{"expr": "fast_ema_period < slowest_period"}]),
                 "constraints[0]:", "'slowest_period' is not a declared parameter",
                 id="constraint-unknown-parameter"),
    pytest.param(_set("parameters", "fast_ema_period", "not a spec"),
                 "parameters.fast_ema_period:", "must be an object, was str",
                 id="parameter-spec-not-an-object"),
]


@pytest.mark.parametrize(("mutate", "prefix", "fragment"), BAD_STRATEGY_TEMPLATES)
def test_bad_strategy_template_names_the_field(write_template, ema_cross_data, mutate, prefix,
                                               fragment):
    # Arrange
    mutate(ema_cross_data)
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    matching = _problems_starting_with(info.value, prefix)
    assert any(fragment in p for p in matching), info.value.problems
    assert path.name in info.value.summary


def test_fixed_config_value_that_does_not_decode_is_reported(write_template, ema_cross_data):
    # Arrange: fast_ema_period becomes a fixed value, and an invalid one
    del ema_cross_data["parameters"]["fast_ema_period"]
    ema_cross_data["constraints"] = []
    ema_cross_data["config"]["fast_ema_period"] = "abc"
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("config: does not decode into EMACrossConfig")
    assert "fast_ema_period" in problem


def test_every_problem_in_one_file_is_reported_together(write_template, ema_cross_data):
    # Arrange: four independent mistakes in one file
    del ema_cross_data["parameters"]["fast_ema_period"]["help"]
    ema_cross_data["parameters"]["slow_ema_period"]["min"] = 6000
    ema_cross_data["parameters"]["trade_size"]["type"] = "money"
    ema_cross_data["constraints"] = ["fast_ema_period <> slow_ema_period"]
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    problems = info.value.problems
    assert _problems_starting_with(info.value, "parameters.fast_ema_period.help:")
    assert _problems_starting_with(info.value, "parameters.slow_ema_period: min 6000 is above")
    assert _problems_starting_with(info.value, "parameters.trade_size.type:")
    assert _problems_starting_with(info.value, "constraints[0]:")
    assert len(problems) == 4, problems
    # Every problem is also in the message shown to the user.
    assert all(p in str(info.value) for p in problems)


# -- bugs: malformed input that crashes the loader or slips through ---------------------------


def test_constraints_that_are_not_a_list_are_reported(write_template, ema_cross_data):
    # Arrange
    ema_cross_data["constraints"] = 1
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert _problems_starting_with(info.value, "constraints")


@pytest.mark.parametrize(("param", "key", "value"), [
    pytest.param("trade_size", "default_by_instrument_class", "CurrencyPair",
                 id="class-defaults-not-an-object"),
    pytest.param("side", "choices", 5, id="choices-not-a-list"),
])
def test_wrongly_typed_parameter_field_is_reported(write_template, ema_cross_data, param, key,
                                                   value):
    # Arrange
    spec = ema_cross_data["parameters"].setdefault(
        param, {"type": "choice", "default": "long", "help": "Side."})
    spec[key] = value
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert _problems_starting_with(info.value, f"parameters.{param}")


def test_strategy_path_that_is_not_a_string_is_reported(write_template, ema_cross_data):
    # Arrange
    ema_cross_data["strategy_path"] = 5
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert _problems_starting_with(info.value, "strategy_path")


def test_bad_fixed_config_is_reported_alongside_other_problems(write_template, ema_cross_data):
    # Arrange: a missing help text AND an undecodable fixed value
    del ema_cross_data["parameters"]["slow_ema_period"]["help"]
    del ema_cross_data["parameters"]["fast_ema_period"]
    ema_cross_data["constraints"] = []
    ema_cross_data["config"]["fast_ema_period"] = "abc"
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert _problems_starting_with(info.value, "parameters.slow_ema_period.help:")
    assert _problems_starting_with(info.value, "config")


def test_fixed_config_value_shadowed_by_a_parameter_is_reported(write_template, ema_cross_data):
    # Arrange
    ema_cross_data["config"]["fast_ema_period"] = "abc"
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert _problems_starting_with(info.value, "config")


def test_text_bounds_of_an_int_parameter_are_reported_as_not_numbers(write_template,
                                                                     ema_cross_data):
    # Arrange
    ema_cross_data["parameters"]["fast_ema_period"].update({"min": "9", "max": "10",
                                                            "default": 9})
    ema_cross_data["parameters"]["slow_ema_period"].update({"default": 20})
    path = write_template(ema_cross_data)

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(path)

    # Assert
    assert not any("above max" in p for p in info.value.problems), info.value.problems
    assert _problems_starting_with(info.value, "parameters.fast_ema_period.min")


# -- backtest engine template --------------------------------------------------------------


def _engine_data(shipped_templates) -> dict:
    return json.loads((shipped_templates / "backtest_engine.json").read_text())


@pytest.mark.parametrize(("section", "key", "value", "prefix"), [
    pytest.param("engine", "run_analysis", "sometimes", "engine: does not decode", id="engine"),
    pytest.param("venue", "bar_execution", "sometimes", "venue: does not decode", id="venue"),
    pytest.param("parameters", "leverage", {"type": "float", "default": 1.0, "help": "x"},
                 "parameters.leverage.min:", id="parameter"),
])
def test_bad_backtest_engine_template_names_the_section(write_template, shipped_templates,
                                                        section, key, value, prefix):
    # Arrange
    data = _engine_data(shipped_templates)
    data[section][key] = value
    path = write_template(data, "backtest_engine.json")

    # Act
    with pytest.raises(TemplateError) as info:
        load_backtest_engine_template(path)

    # Assert
    assert _problems_starting_with(info.value, prefix), info.value.problems


def test_backtest_engine_template_missing_sections_are_all_named(write_template,
                                                                shipped_templates):
    # Arrange
    data = _engine_data(shipped_templates)
    del data["venue"], data["engine"]
    path = write_template(data, "backtest_engine.json")

    # Act
    with pytest.raises(TemplateError) as info:
        load_backtest_engine_template(path)

    # Assert
    assert info.value.problems == ["engine: missing", "venue: missing"]


# -- StrategyTemplate.validate_parameters --------------------------------------------------


@pytest.fixture
def ema_cross(shipped_templates):
    return TemplateService(shipped_templates).strategy("ema_cross")


def test_validate_parameters_fills_in_defaults(ema_cross):
    # Act
    values = ema_cross.validate_parameters(None)

    # Assert
    assert values == {"fast_ema_period": 10, "slow_ema_period": 20, "trade_size": Decimal("1")}


@pytest.mark.parametrize(("instrument_class", "trade_size"), [
    ("CurrencyPair", Decimal("100000")),
    ("CryptoPerpetual", Decimal("0.1")),
    ("Equity", Decimal("100")),
    ("FuturesContract", Decimal("1")),  # no class default: the plain default
    (None, Decimal("1")),
])
def test_trade_size_default_depends_on_instrument_class(ema_cross, instrument_class, trade_size):
    # Act
    values = ema_cross.validate_parameters({}, instrument_class)

    # Assert
    assert values["trade_size"] == trade_size


def test_explicit_value_beats_instrument_class_default(ema_cross):
    # Act
    values = ema_cross.validate_parameters({"trade_size": "2500"}, "CurrencyPair")

    # Assert
    assert values["trade_size"] == Decimal("2500")


def test_validate_parameters_coerces_text_from_forms(ema_cross):
    # Act
    values = ema_cross.validate_parameters(
        {"fast_ema_period": " 7 ", "slow_ema_period": 30.0, "trade_size": 0.5})

    # Assert
    assert values == {"fast_ema_period": 7, "slow_ema_period": 30, "trade_size": Decimal("0.5")}
    assert type(values["slow_ema_period"]) is int


@pytest.mark.parametrize(("values", "expected"), [
    ({"fast_ema_period": 1}, "fast_ema_period: must be >= 2, was 1"),
    ({"slow_ema_period": 5001}, "slow_ema_period: must be <= 5000, was 5001"),
    ({"trade_size": "0"}, "trade_size: must be >= 0.000001, was '0'"),
])
def test_out_of_bounds_value_is_named(ema_cross, values, expected):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters(values)

    # Assert
    assert info.value.problems == [expected]


@pytest.mark.parametrize("value", ["abc", 1.5, True, None, "1.5"])
def test_wrong_type_for_an_int_is_named(ema_cross, value):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters({"fast_ema_period": value})

    # Assert
    assert info.value.problems == [f"fast_ema_period: must be a whole number, was {value!r}"]


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True])
def test_wrong_value_for_a_decimal_is_named(ema_cross, value):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters({"trade_size": value})

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("trade_size: must be a")
    assert repr(value) in problem


def test_unknown_parameter_name_lists_the_known_ones(ema_cross):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters({"fast_period": 5})

    # Assert
    assert info.value.problems == [
        "fast_period: unknown parameter of template 'ema_cross' "
        "(known: fast_ema_period, slow_ema_period, trade_size)"
    ]


@pytest.mark.parametrize(("fast", "slow"), [(20, 20), (30, 20)])
def test_fast_period_not_below_slow_period_violates_the_constraint(ema_cross, fast, slow):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters({"fast_ema_period": fast, "slow_ema_period": slow})

    # Assert
    assert info.value.problems == [
        "fast_ema_period: the fast EMA period must be shorter than the slow EMA period"]


def test_constraint_holds_when_fast_is_below_slow(ema_cross):
    # Act
    values = ema_cross.validate_parameters({"fast_ema_period": 19, "slow_ema_period": 20})

    # Assert
    assert (values["fast_ema_period"], values["slow_ema_period"]) == (19, 20)


def test_constraint_is_not_checked_on_a_value_that_failed_to_parse(ema_cross):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters({"fast_ema_period": "abc", "slow_ema_period": 3})

    # Assert: one problem about the type, no follow-on constraint complaint
    assert info.value.problems == ["fast_ema_period: must be a whole number, was 'abc'"]


def test_every_parameter_problem_is_reported_at_once(ema_cross):
    # Act
    with pytest.raises(ValidationError) as info:
        ema_cross.validate_parameters(
            {"fast_ema_period": "abc", "slow_ema_period": 6000, "trade_size": "x", "colour": 1})

    # Assert
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "colour", "fast_ema_period", "slow_ema_period", "trade_size"]


def test_float_and_bool_parameters_of_other_templates(shipped_templates):
    # Arrange
    service = TemplateService(shipped_templates)
    momentum, bb = service.strategy("simple_momentum"), service.strategy("bb_mean_reversion")

    # Act
    accepted = momentum.validate_parameters({"allow_short": "no", "breakout_atr_multiple": "1.5"})
    with pytest.raises(ValidationError) as info:
        momentum.validate_parameters({"allow_short": "maybe", "breakout_atr_multiple": "nan"})
    with pytest.raises(ValidationError) as bb_info:
        bb.validate_parameters({"rsi_buy_threshold": 0.8, "rsi_sell_threshold": 0.7})

    # Assert
    assert accepted["allow_short"] is False
    assert accepted["breakout_atr_multiple"] == 1.5
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "allow_short", "breakout_atr_multiple"]
    assert bb_info.value.problems == [
        "rsi_buy_threshold: the RSI buy threshold must be below the sell threshold"]


def test_strategy_config_merges_fixed_config_parameters_and_bindings(ema_cross):
    # Act
    config = ema_cross.strategy_config({"fast_ema_period": 5, "trade_size": "0.25"},
                                       "BTCUSDT-PERP.BINANCE",
                                       "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")

    # Assert
    assert config["fast_ema_period"] == 5
    assert config["slow_ema_period"] == 20
    assert config["trade_size"] == "0.25"  # Decimal travels as text in NautilusTrader JSON
    assert config["close_positions_on_stop"] is True  # from the fixed config
    assert config["instrument_id"] == "BTCUSDT-PERP.BINANCE"
    assert config["bar_type"] == "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


# -- TemplateService lookup ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../etc/passwd", "no_such_template", "", "ema_cross.json",
                                  "strategies/ema_cross"])
def test_unknown_or_unsafe_strategy_name_lists_known_templates(shipped_templates, name):
    # Arrange
    service = TemplateService(shipped_templates)

    # Act
    with pytest.raises(TemplateError) as info:
        service.strategy(name)

    # Assert
    message = str(info.value)
    assert f"Unknown strategy template {name!r}" in message
    assert ("Known templates: bb_mean_reversion, ema_cross, ema_cross_bracket, simple_momentum."
            in message)


def test_strategy_name_cannot_escape_the_strategies_folder(tmp_path, shipped_templates):
    # Arrange: a perfectly valid template one folder above strategies/
    (tmp_path / "strategies").mkdir()
    shutil.copy(shipped_templates / "strategies" / "ema_cross.json", tmp_path / "outside.json")
    service = TemplateService(tmp_path)

    # Act
    with pytest.raises(TemplateError) as info:
        service.strategy("../outside")

    # Assert
    assert "Known templates: none." in str(info.value)


def test_summaries_report_a_broken_template_instead_of_raising(tmp_path, shipped_templates,
                                                              ema_cross_data):
    # Arrange
    (tmp_path / "strategies").mkdir()
    shutil.copy(shipped_templates / "strategies" / "ema_cross.json",
                tmp_path / "strategies" / "ema_cross.json")
    del ema_cross_data["parameters"]["fast_ema_period"]["help"]
    (tmp_path / "strategies" / "broken.json").write_text(json.dumps(ema_cross_data))
    service = TemplateService(tmp_path)  # and no backtest_engine.json at all

    # Act
    summaries = {s.name: s for s in service.summaries()}

    # Assert
    assert summaries["ema_cross"].error is None
    assert "parameters.fast_ema_period.help" in summaries["broken"].error
    assert "Cannot read template" in summaries["backtest_engine"].error


def test_labels_units_and_applies_when_are_read_and_checked(write_template, ema_cross_data):
    # Arrange
    data = json.loads(json.dumps(ema_cross_data))
    data["parameters"]["fast_ema_period"].update(label="Fast EMA period", unit="bars")
    data["parameters"]["trade_size"].pop("label")
    good = load_strategy_template(write_template(data))
    data["parameters"]["trade_size"]["applies_when"] = {"fast_ema_period": [5]}

    # Act / Assert
    fast = good.parameters["fast_ema_period"]
    assert (fast.title, fast.unit) == ("Fast EMA period", "bars")
    assert good.parameters["trade_size"].title == "Trade size"  # made from the name
    with pytest.raises(TemplateError, match=r"parameters.trade_size.applies_when.fast_ema_period:"
                                            " must name a choice or bool parameter"):
        load_strategy_template(write_template(data))
