"""Tests of services/backtest/sweep.py: value lists and ranges, grids, constraints, limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.backtest.sweep import MAX_RUNS, SweepSpec, expand, parse_values, run_specs
from services.errors import ValidationError
from services.templates import TemplateService


@pytest.fixture
def ema_cross(shipped_templates):
    return TemplateService(shipped_templates).strategy("ema_cross")


def _spec(grid, **kwargs) -> SweepSpec:
    return SweepSpec(strategy="ema_cross", bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL", grid=grid,
                     **kwargs)


@pytest.mark.parametrize(("text", "values"), [
    ("5,10,20", ["5", "10", "20"]),
    ("10..30:10", ["10", "20", "30"]),
    ("1..3", ["1", "2", "3"]),
    ("0.5..1.5:0.5", ["0.5", "1.0", "1.5"]),
    ("2, 10..20:5 ,40", ["2", "10", "15", "20", "40"]),
])
def test_parse_values_reads_lists_and_inclusive_ranges(text, values):
    assert parse_values(text) == values


@pytest.mark.parametrize(("text", "message"), [
    ("20..10", "the range is empty"),
    ("1..9:0", "the step must be positive"),
    ("1..9:-1", "the step must be positive"),
    ("a..b", "not a range"),
    ("0..100000", "at most 10,000"),
])
def test_parse_values_refuses_bad_ranges(text, message):
    with pytest.raises(ValueError, match=message):
        parse_values(text)


def test_grid_is_every_combination_that_keeps_the_templates_constraint(ema_cross):
    combos = expand(_spec({"fast_ema_period": ["10,20,30"], "slow_ema_period": ["15,25"]}),
                    ema_cross)

    assert combos == [
        {"fast_ema_period": 10, "slow_ema_period": 15},
        {"fast_ema_period": 10, "slow_ema_period": 25},
        {"fast_ema_period": 20, "slow_ema_period": 25},
    ]


def test_user_constraints_apply_on_top_and_decimals_stay_exact(ema_cross):
    combos = expand(_spec({"fast_ema_period": ["5..20:5"], "trade_size": ["0.1,0.25"]},
                          fixed={"slow_ema_period": 30}, constraints=("fast_ema_period<=10",)),
                    ema_cross)

    assert [(c["fast_ema_period"], c["trade_size"]) for c in combos] == [
        (5, "0.1"), (5, "0.25"), (10, "0.1"), (10, "0.25")]
    runs = run_specs(_spec({}, fixed={"slow_ema_period": 30}), combos)
    assert runs[1].parameters == {"slow_ema_period": 30, "fast_ema_period": 5, "trade_size": "0.25"}
    assert Decimal(runs[1].parameters["trade_size"]) == Decimal("0.25")
    assert runs[1].label == "fast_ema_period=5 trade_size=0.25"


def test_random_draws_are_distinct_valid_and_repeatable(ema_cross):
    spec = _spec({"fast_ema_period": ["2..40"], "slow_ema_period": ["3..60"]}, random_draws=25,
                 seed=11)

    first, second = expand(spec, ema_cross), expand(spec, ema_cross)
    other_seed = expand(_spec(spec.grid, random_draws=25, seed=12), ema_cross)

    pairs = [(c["fast_ema_period"], c["slow_ema_period"]) for c in first]
    assert len(set(pairs)) == 25 and all(f < s for f, s in pairs)
    assert first == second
    assert first != other_seed


@pytest.mark.parametrize(("spec_kwargs", "message"), [
    ({"grid": {}}, "choose at least one parameter"),
    ({"grid": {"fast_ema_period": ["500,600"], "slow_ema_period": ["10"]}}, "0 combinations"),
    ({"grid": {"fast_ema_period": ["2..150"], "slow_ema_period": ["3..160"]}},
     f"limit is {MAX_RUNS:,}"),
    ({"grid": {"fast_ema_period": ["2..1000"], "slow_ema_period": ["3..5000"]}},
     "grid has 4,993,002 combinations"),
    ({"grid": {"fast_ema_period": ["x"]}}, "must be a whole number"),
    ({"grid": {"fast_ema_period": [""]}}, "no values given"),
    ({"grid": {"fast_ema_period": ["5"]}, "fixed": {"fast_ema_period": 5}}, "also given"),
    ({"grid": {"fast_ema_period": ["5"]}, "random_draws": 0}, "between 1 and 10,000"),
    ({"grid": {"fast_ema_period": ["5"]}, "constraints": ("nope < 3",)}, "'nope' is not a declared"),
])
def test_bad_sweeps_are_refused_with_the_reason(ema_cross, spec_kwargs, message):
    with pytest.raises(ValidationError) as raised:
        expand(_spec(**spec_kwargs), ema_cross)
    assert message in str(raised.value)


def test_sweep_spec_round_trips_through_a_dict():
    spec = _spec({"fast_ema_period": ["5,10"]}, random_draws=2, constraints=("fast_ema_period<9",),
                 fixed={"trade_size": Decimal("0.5")})

    again = SweepSpec.from_dict(spec.to_dict())

    assert again.to_dict() == spec.to_dict()
    assert again.constraints == ("fast_ema_period<9",)
