"""Templates that once ran code, aborted the server or crashed the loader: each is one
TemplateError naming the field now, and nothing is imported or run.
"""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.errors import TemplateError, ValidationError
from services.templates import (
    load_backtest_engine_template,
    load_strategy_template,
)


def _engine_data(shipped_templates) -> dict:
    return json.loads((shipped_templates / "backtest_engine.json").read_text())


def test_a_class_path_outside_the_allow_list_is_never_imported(write_template, ema_cross_data,
                                                                capsys):
    # Arrange: "this" prints the Zen of Python when imported.
    sys.modules.pop("this", None)
    ema_cross_data["strategy_path"] = "this:s"

    # Act
    with pytest.raises(TemplateError) as info:
        load_strategy_template(write_template(ema_cross_data))

    # Assert
    assert "strategy_path: 'this' is not in an allowed package" in str(info.value)
    assert "this" not in sys.modules
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


def test_a_module_planted_on_the_path_does_not_run(write_template, ema_cross_data, tmp_path,
                                                    monkeypatch):
    # Arrange: a module on sys.path that would leave a mark when imported.
    mark = tmp_path / "ran"
    (tmp_path / "planted_strategy.py").write_text(f"open({str(mark)!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ema_cross_data["config_path"] = "planted_strategy:Config"

    # Act
    with pytest.raises(TemplateError, match="config_path: 'planted_strategy' is not in an allowed"):
        load_strategy_template(write_template(ema_cross_data))

    # Assert
    assert not mark.exists()


def test_configured_strategy_packages_are_allowed(write_template, ema_cross_data, tmp_path,
                                                  monkeypatch):
    # Arrange: the operator's own package, named in WORKBENCH_STRATEGY_PACKAGES.
    package = tmp_path / "desk_strategies"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("WORKBENCH_STRATEGY_PACKAGES", "desk_strategies")
    ema_cross_data["strategy_path"] = "desk_strategies:EMACross"
    ema_cross_data["config_path"] = "desk_strategies:EMACrossConfig"

    # Act
    template = load_strategy_template(write_template(ema_cross_data))

    # Assert
    assert template.strategy_path == "desk_strategies:EMACross"


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("trader_id", "bad", "engine.trader_id: must be NAME-TAG"),
    ("logging", {"log_level": "LOUD"}, "engine.logging.log_level: must be one of OFF, TRACE"),
])
def test_bad_engine_values_are_refused_before_nautilus_sees_them(write_template, shipped_templates,
                                                                  field, value, fragment):
    # "trader_id": "bad" made NautilusTrader's Rust core abort the whole web server.
    data = _engine_data(shipped_templates)
    data["engine"][field] = value
    with pytest.raises(TemplateError) as info:
        load_backtest_engine_template(write_template(data, "backtest_engine.json"))
    assert fragment in str(info.value)


@pytest.mark.parametrize(("field", "value"), [("book_type", "L9_SUPER"), ("oms_type", "NET"),
                                              ("account_type", "PIGGY_BANK")])
def test_bad_venue_enums_are_refused_at_validation(write_template, shipped_templates, field,
                                                   value):
    data = _engine_data(shipped_templates)
    data["venue"][field] = value
    with pytest.raises(TemplateError, match=f"venue.{field}: must be one of .*was '{value}'"):
        load_backtest_engine_template(write_template(data, "backtest_engine.json"))


def test_a_missing_venue_parameter_is_named(write_template, shipped_templates):
    data = _engine_data(shipped_templates)
    del data["parameters"]["oms_type"]
    with pytest.raises(TemplateError, match="parameters.oms_type: missing"):
        load_backtest_engine_template(write_template(data, "backtest_engine.json"))


def test_nautilus_aborts_in_the_child_become_problems():
    # Arrange: the one value the workbench checks first, sent straight to NautilusTrader.
    from services.template_probe import BACKTEST_ENGINE, nautilus_problems

    payload = {"engine": {"trader_id": "bad"},
               "venue": {"name": "SIM", "oms_type": "NETTING", "account_type": "MARGIN",
                         "starting_balances": ["1 USD"]}}

    # Act: this process survives NautilusTrader's panic.
    problems = nautilus_problems(BACKTEST_ENGINE, payload)

    # Assert
    assert problems == ["NautilusTrader aborted (SIGABRT) while decoding it: Condition failed: "
                        "invalid string for 'value' did not contain '-', was 'bad'"]


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"a":' * 100_000 + "1" + "}" * 100_000, "nests objects or lists too deeply"),
    ('{"name": NaN}', "NaN is not a number JSON allows"),
    ('{"name": Infinity}', "Infinity is not a number JSON allows"),
])
def test_unreadable_json_is_one_line(write_template, text, fragment):
    with pytest.raises(TemplateError, match=fragment):
        load_strategy_template(write_template(text))


def test_a_latin_1_template_is_named(tmp_path, ema_cross_data):
    path = tmp_path / "latin.json"
    path.write_bytes(json.dumps({**ema_cross_data, "title": "Stratégie"},
                                ensure_ascii=False).encode("latin-1"))
    with pytest.raises(TemplateError, match="latin.json is not UTF-8 text .* save it as UTF-8"):
        load_strategy_template(path)


def test_nan_bounds_cannot_switch_the_bound_check_off(write_template, ema_cross_data):
    ema_cross_data["parameters"]["fast_ema_period"]["max"] = "NaN"
    ema_cross_data["parameters"]["trade_size"]["min"] = "NaN"
    with pytest.raises(TemplateError) as info:
        load_strategy_template(write_template(ema_cross_data))
    assert "parameters.fast_ema_period.max: must be a finite number, was 'NaN'" in str(info.value)
    assert "parameters.trade_size.min: must be a finite number, was 'NaN'" in str(info.value)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(),
                 st.lists(st.text(max_size=5), max_size=3)))
def test_any_trader_id_is_a_template_error_or_loads(shipped_templates, tmp_path_factory, value):
    # Property: whatever the value, loading ends in a TemplateError or a template; the process
    # (this test) is never aborted.
    data = _engine_data(shipped_templates)
    data["engine"]["trader_id"] = value
    path = tmp_path_factory.mktemp("tid") / "backtest_engine.json"
    path.write_text(json.dumps(data))
    try:
        template = load_backtest_engine_template(path)
    except TemplateError as e:
        assert "trader_id" in str(e)
    else:
        assert template.engine["trader_id"] == value


# -- engine templates --------------------------------------------------------------------------
@pytest.mark.parametrize(("values", "fragment"), [
    ({"replay_start": "garbage"}, "replay_start: not an ISO 8601 date or time, was 'garbage'"),
    ({"max_order_submit_rate": "lots"}, "max_order_submit_rate: must be N/HH:MM:SS"),
    ({"max_order_submit_rate": "0/00:00:01"}, "max_order_submit_rate: must be N/HH:MM:SS"),
])
def test_paper_engine_parameters_are_refused_at_validation(shipped_templates, values, fragment):
    from services.catalog import InstrumentInfo
    from services.engine.config import build_engine_config, load_engine_template
    from services.templates import TemplateService

    templates = TemplateService(shipped_templates)
    btc = InstrumentInfo("BTCUSDT-PERP.BINANCE", "BINANCE", "BTCUSDT-PERP", "CryptoPerpetual",
                         "BTC", "USDT", "USDT", 1, 3, 1.0, False)
    template = load_engine_template(shipped_templates / "paper_trading.json",
                                    templates.strategy_names())
    with pytest.raises(ValidationError) as info:
        build_engine_config(template, values, templates.strategy("ema_cross"), btc, None, "abc")
    assert fragment in str(info.value)


def test_engine_client_paths_outside_the_allow_list_are_refused(shipped_templates, tmp_path):
    from services.engine.config import load_engine_template

    data = json.loads((shipped_templates / "paper_trading.json").read_text())
    data["node"]["data_clients"]["REPLAY"]["factory"]["path"] = "os:system"
    path = tmp_path / "paper_trading.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TemplateError, match="node.data_clients.REPLAY.factory.path: 'os' is not "
                                            "in an allowed package"):
        load_engine_template(path, ["ema_cross"])
