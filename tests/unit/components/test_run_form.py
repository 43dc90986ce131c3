"""RunForm, the run form the Backtest and Sweeps pages share, over real services (no browser)."""

from __future__ import annotations

import datetime as dt

import panel as pn
import pytest

from components import BacktestConfigurator, SweepView
from components.run_form import RunForm
from services import ValidationError
from services.backtest import BacktestSpec
from services.backtest.sweep import SweepSpec

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


def test_both_pages_use_the_one_run_form(workbench):
    # Act
    configurator = BacktestConfigurator(workbench=workbench)
    sweeps = SweepView(workbench=workbench)

    # Assert: one component, in its two modes, inside each page's layout.
    assert type(configurator.form) is RunForm and not configurator.form.grid
    assert type(sweeps.form) is RunForm and sweeps.form.grid
    for page, form in ((configurator, configurator.form), (sweeps, sweeps.form)):
        shown = list(page.__panel__().select(type(form.strategy_card)))
        assert form.strategy_card in shown and form.data_card in shown
        assert form.venue_card in shown


def test_the_default_slice_is_the_pages_own(workbench):
    backtest = RunForm(workbench=workbench)
    sweep = RunForm(workbench=workbench, grid=True, default_days=7)

    backtest.bar_type = sweep.bar_type = BTC_BARS

    # Start and End are typed text: the days of the last bar and of 30 / 7 days before it.
    last_day = workbench.catalog.backtestable_series(BTC_BARS).last.date()
    assert backtest.end == sweep.end == last_day.isoformat()
    assert dt.date.fromisoformat(backtest.start) == last_day - dt.timedelta(days=30)
    assert dt.date.fromisoformat(sweep.start) == last_day - dt.timedelta(days=7)


def test_grid_mode_leaves_out_the_parameters_left_empty(workbench):
    form = RunForm(workbench=workbench, grid=True)

    form.values.fast_ema_period = "5,10"
    form.values.slow_ema_period = ""

    assert form.grid_values() == {"fast_ema_period": ["5,10"]}
    assert form.parameters() == {}


def test_the_sweep_runs_with_the_venue_settings_of_the_form(workbench):
    # Arrange
    view = SweepView(workbench=workbench)
    view.form.bar_type = BTC_BARS

    # Act
    view.form.venue_values.starting_balance = "50000"
    view.form.venue_values.oms_type = "HEDGING"
    sweep, walk_forward = view.spec(), view.walk_forward_spec()

    # Assert
    for spec in (sweep, walk_forward):
        assert spec.venue.starting_balance == "50000" and spec.venue.oms_type == "HEDGING"
        assert spec.venue.currency == "USDT"


def test_needs_a_workbench():
    with pytest.raises(ValueError, match="workbench"):
        RunForm()


@pytest.mark.parametrize(("bar_type", "hint"), [
    (BTC_BARS, "default 0.1;"), ("AAPL.XNAS-1-MINUTE-LAST-EXTERNAL", "default 100;"),
    ("EUR/USD.SIM-1-MINUTE-MID-INTERNAL", "default 100000;")])
def test_the_sweeps_trade_size_hint_is_the_default_the_run_uses(workbench, bar_type, hint):
    # Arrange: the template's plain default is 1; each instrument class has its own.
    view = SweepView(workbench=workbench)

    # Act
    view.form.bar_type = bar_type
    (field,) = [w for w in view.__panel__().select(pn.widgets.TextInput)
                if w.name == "Trade size (instrument units)"]

    # Assert
    assert field.placeholder.startswith(hint)


def test_a_new_bar_type_keeps_the_values_typed_and_the_fields(workbench):
    form = RunForm(workbench=workbench)
    before = form.fields
    form.values.fast_ema_period = "7"

    form.bar_type = BTC_BARS

    assert form.fields is before and form.parameters()["fast_ema_period"] == 7
    assert form.parameters()["trade_size"] == "0.1"


@pytest.mark.parametrize("typed", ["abc", "7.5"])
def test_the_service_refuses_a_value_that_is_not_a_whole_number(workbench, typed):
    """The API and the CLI submit without the form: the service says the same."""
    # Arrange
    spec = BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04",
                        end="2024-03-05", parameters={"fast_ema_period": typed})
    sweep = SweepSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04",
                      end="2024-03-05", grid={"fast_ema_period": [f"5,{typed}"]})

    # Act / Assert
    with pytest.raises(ValidationError) as refused:
        workbench.backtests.submit(spec)
    assert refused.value.problems == [f"fast_ema_period: must be a whole number, was {typed!r}"]
    with pytest.raises(ValidationError) as refused:
        workbench.backtests.submit_sweep(sweep)
    assert refused.value.problems == [
        f"grid.fast_ema_period: must be a whole number, was {typed!r}"]
    assert workbench.backtests.list_runs() == [] and workbench.backtests.list_sweeps() == []


@pytest.mark.parametrize(("typed", "problem"), [
    ("5,7.5", "Fast EMA period: must be a whole number, was '7.5'"),
    ("5..x", "Fast EMA period: '5..x' is not a range LOW..HIGH[:STEP] of numbers"),
    ("1,5", "Fast EMA period: must be >= 2, was '1'"),
])
def test_a_sweeps_values_to_try_are_checked_as_typed(workbench, typed, problem):
    view = SweepView(workbench=workbench)

    view.form.values.fast_ema_period = typed

    assert view.form.problems == [problem]
    assert view._submit_button.disabled and problem in view._fix_note.object
    view.param.trigger("submit")
    assert problem in view.message and workbench.backtests.list_sweeps() == []


def test_fields_have_human_labels_with_units(workbench):
    form = RunForm(workbench=workbench)

    form.bar_type = BTC_BARS

    names = {w.name for w in form.__panel__().select(pn.widgets.Widget)}
    assert {"Fast EMA period (bars)", "Slow EMA period (bars)", "Trade size (instrument units)",
            "OMS type", "Slippage probability (0 to 1, per market order)",
            "Starting balance (USDT)", "Account currency", "Leverage (×)"} <= names
    raw = {"fast_ema_period", "oms_type", "prob_slippage", "Oms type", "Prob slippage"}
    assert not names & raw
    (oms,) = [w for w in form.__panel__().select(pn.widgets.Select) if w.name == "OMS type"]
    assert oms.options == {"Netting: one position per instrument": "NETTING",
                           "Hedging: several positions per instrument": "HEDGING"}


def test_the_fixed_commission_shows_only_under_the_fixed_fee_model(workbench):
    # Arrange
    form = RunForm(workbench=workbench)
    form.bar_type = BTC_BARS

    def commission():
        return [w for w in form.__panel__().select(pn.widgets.TextInput)
                if w.name.startswith("Fixed commission")]

    # Assert: maker/taker by default: hidden, not submitted, and not checked.
    (field,) = commission()
    assert not field.visible and form.venue().fixed_commission is None
    form.venue_values.fixed_commission = "abc"
    assert form.problems == []

    # Act
    form.venue_values.fee_model = "fixed"

    # Assert
    assert field.visible and field.name == "Fixed commission (USDT per order)"
    assert form.problems == ["Fixed commission: must be a decimal number, was 'abc'"]
    form.venue_values.fixed_commission = "2.5"
    assert form.venue().fixed_commission == "2.5" and form.venue().fee_model == "fixed"
