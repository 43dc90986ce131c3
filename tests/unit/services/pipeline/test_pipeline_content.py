"""Version content and its hash: same content, same id; any change, another id."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.backtest.config_builder import _venue
from services.backtest.spec import BacktestSpec, VenueSettings
from services.pipeline.content import (
    canonical_json,
    content_from_run_config,
    content_hash,
    diff,
    nautilus_version,
    venue_settings_of,
)
from services.templates import TemplateService

DATA = Path(__file__).parent / "data"
PARAMETERS = ("fast_ema_period", "slow_ema_period", "trade_size")


@pytest.fixture
def run_config() -> dict:
    """The config.json a real EMA-cross backtest run wrote."""
    return json.loads((DATA / "run_config.json").read_text())


def _leaves(value, path=()):
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif isinstance(value, list) and value:
        for i, child in enumerate(value):
            yield from _leaves(child, (*path, i))
    else:
        yield path


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if value is None:
        return "set"
    if isinstance(value, str):
        return value + "x"
    return ["changed"]


def test_hash_is_the_sha256_of_sorted_compact_json():
    # Arrange
    content = {"b": 1, "a": {"y": [1, 2], "x": "é"}}

    # Act
    text = canonical_json(content)

    # Assert
    assert text == '{"a":{"x":"é","y":[1,2]},"b":1}'
    assert content_hash(content) == hashlib.sha256(text.encode()).hexdigest()


def test_same_content_in_another_key_order_has_the_same_id(run_config):
    # Arrange
    reordered = json.loads(json.dumps(run_config, sort_keys=True))
    reordered["engine"] = dict(reversed(list(reordered["engine"].items())))

    # Act
    first = content_from_run_config(run_config, "ema_cross", PARAMETERS)
    second = content_from_run_config(reordered, "ema_cross", PARAMETERS)

    # Assert
    assert first.version_id == second.version_id
    assert len(first.version_id) == 64


def test_dates_catalog_and_progress_file_are_not_part_of_a_version(run_config):
    # Arrange: the same strategy over other days, from another catalog and run folder
    other = copy.deepcopy(run_config)
    other["data"][0].update(start_time="2024-05-01T00:00:00+00:00",
                            end_time="2024-05-09T00:00:00+00:00", catalog_path="/elsewhere")
    other["engine"]["actors"][0]["config"]["progress_file"] = "/tmp/other/progress.json"

    # Act / Assert
    assert (content_from_run_config(other, "ema_cross", PARAMETERS).version_id
            == content_from_run_config(run_config, "ema_cross", PARAMETERS).version_id)


def test_any_field_of_the_content_changed_gives_another_id(run_config):
    # Arrange
    base = content_from_run_config(run_config, "ema_cross", PARAMETERS).content
    seen = {content_hash(base)}

    # Act / Assert: every leaf of strategy, parameters, engine, data, venue and version
    leaves = list(_leaves(base))
    assert len(leaves) > 100
    for path in leaves:
        changed = copy.deepcopy(base)
        node = changed
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(node[path[-1]])
        digest = content_hash(changed)
        assert digest not in seen, path
        seen.add(digest)


def test_content_holds_the_effective_strategy_config_and_the_nautilus_version(run_config):
    # Act
    content = content_from_run_config(run_config, "ema_cross", PARAMETERS).content

    # Assert
    assert content["strategy"]["strategy_path"] == (
        "nautilus_trader.examples.strategies.ema_cross:EMACross")
    assert content["strategy"]["config"]["close_positions_on_stop"] is True
    assert content["parameters"] == {"fast_ema_period": 10, "slow_ema_period": 20,
                                     "trade_size": "0.1"}
    assert content["data"] == {"instrument_id": "BTCUSDT-PERP.BINANCE",
                               "bar_type": "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"}
    assert "actors" not in content["engine_template"]["engine"]
    assert content["engine_template"]["engine"]["risk_engine"]["bypass"] is False
    assert content["nautilus_trader"] == nautilus_version() == "1.231.0"


@dataclass(frozen=True)
class _Instrument:
    instrument_id: str = "BTCUSDT-PERP.BINANCE"
    venue: str = "BINANCE"
    settlement_currency: str = "USDT"
    is_inverse: bool = False


@pytest.mark.parametrize("settings", [
    VenueSettings(),
    VenueSettings(starting_balance="250000", oms_type="HEDGING", account_type="CASH",
                  leverage=3.0, prob_slippage=0.25, prob_fill_on_limit=0.5, random_seed=7),
    VenueSettings(fee_model="fixed", fixed_commission="2.5"),
])
def test_venue_settings_are_read_back_from_the_venue_they_built(settings, shipped_templates):
    # Arrange: the venue the backtest service builds from the settings
    engine = TemplateService(shipped_templates).backtest_engine()
    venue, _ = _venue(BacktestSpec("ema_cross", "X", venue=settings), engine, _Instrument())

    # Act
    explicit = venue_settings_of(json.loads(json.dumps(venue)))

    # Assert: explicit settings build the same venue, whatever the template's defaults
    rebuilt, _ = _venue(BacktestSpec("ema_cross", "X", venue=explicit), engine, _Instrument())
    assert rebuilt == venue
    assert explicit.currency == "USDT"


def test_diff_lists_every_differing_field_by_section():
    # Arrange
    left = {"parameters": {"fast": 10, "slow": 20}, "venue": {"oms_type": "NETTING"},
            "nautilus_trader": "1.231.0"}
    right = {"parameters": {"fast": 12, "slow": 20}, "venue": {"oms_type": "HEDGING",
                                                              "leverage": 2.0},
             "nautilus_trader": "1.231.0"}

    # Act
    found = [(d.section, d.field, d.left, d.right) for d in diff(left, right)]

    # Assert
    assert found == [("parameters", "fast", 10, 12), ("venue", "leverage", None, 2.0),
                     ("venue", "oms_type", "NETTING", "HEDGING")]
    assert diff(left, copy.deepcopy(left)) == []
