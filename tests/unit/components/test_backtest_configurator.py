"""BacktestConfigurator driven through its parameters and widgets, over real services.

No browser and no server: Panel's periodic callback cannot run here, so after a submit the
component leaves polling to its caller, and the tests call ``poll()`` as a notebook would.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import panel as pn
import pytest

from components import BacktestConfigurator
from services import ValidationError

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
EURUSD_BARS = "EUR/USD.SIM-1-MINUTE-MID-INTERNAL"
RUN_TIMEOUT_S = 180


def _widget(configurator: BacktestConfigurator, name: str) -> pn.widgets.Widget:
    """The widget labelled ``name`` in the component's layout, as a user finds it."""
    found = [w for w in configurator.__panel__().select(pn.widgets.Widget) if w.name == name]
    assert len(found) == 1, f"expected one widget named {name!r}, found {len(found)}"
    return found[0]


def _run_ids(workbench) -> set[str]:
    return {r.run_id for r in workbench.backtests.list_runs()}


@pytest.fixture
def configurator(workbench) -> BacktestConfigurator:
    return BacktestConfigurator(workbench=workbench)


# -- choices and defaults ----------------------------------------------------------------------
def test_needs_a_workbench():
    with pytest.raises(ValueError, match="workbench"):
        BacktestConfigurator()


def test_choices_come_from_the_templates_and_the_catalog(workbench, configurator):
    # Arrange
    bar_types = [s.bar_type for s in workbench.catalog.backtestable()]

    # Assert
    assert configurator.form.param.strategy.objects == workbench.templates.strategy_names()
    assert configurator.form.param.strategy.names["EMA cross (ema_cross)"] == "ema_cross"
    shipped = {"ema_cross", "bb_mean_reversion", "simple_momentum"}
    assert shipped <= set(configurator.form.param.strategy.objects)
    assert configurator.form.strategy == "ema_cross"
    assert configurator.form.param.bar_type.objects == bar_types
    assert set(bar_types) == {AAPL_BARS, BTC_BARS, EURUSD_BARS}
    assert configurator.form.bar_type == bar_types[0]
    assert configurator.message == ""  # nothing wrong, nothing to say


def test_widgets_show_the_templates_parameters_with_their_defaults(configurator):
    assert _widget(configurator, "Fast EMA period (bars)").value == "10"
    assert _widget(configurator, "Slow EMA period (bars)").value == "20"
    fast = _widget(configurator, "Fast EMA period (bars)")
    # Numbers are typed as text and checked as typed (a number spinner in the browser would
    # silently revert "abc" or "7.5" to the last value); the bounds are stated.
    assert isinstance(fast, pn.widgets.TextInput)
    assert "Allowed: 2 to 1000." in fast.description
    assert _widget(configurator, "Starting balance (USD)").value == "1000000"
    assert _widget(configurator, "OMS type").value == "NETTING"


@pytest.mark.parametrize(("bar_type", "currency", "trade_size"), [
    (EURUSD_BARS, "USD", "100000"),  # CurrencyPair
    (BTC_BARS, "USDT", "0.1"),       # CryptoPerpetual
    (AAPL_BARS, "USD", "100"),       # Equity
])
def test_bar_type_sets_currency_and_default_trade_size(configurator, bar_type, currency,
                                                       trade_size):
    # Arrange: start from a different instrument, so the change is a real change.
    configurator.form.bar_type = EURUSD_BARS if bar_type != EURUSD_BARS else BTC_BARS

    # Act
    configurator.form.bar_type = bar_type

    # Assert
    assert configurator.form.currency == currency
    spec = configurator.spec()
    assert spec.parameters["trade_size"] == trade_size
    assert spec.venue.currency == currency
    assert float(_widget(configurator, "Trade size (instrument units)").value) == float(trade_size)


@pytest.mark.parametrize("bar_type", [AAPL_BARS, BTC_BARS, EURUSD_BARS])
def test_default_dates_are_the_last_month_inside_the_coverage(workbench, configurator, bar_type):
    # Arrange
    series = workbench.catalog.backtestable_series(bar_type)
    first, last = series.first.date(), series.last.date()

    # Act
    configurator.form.bar_type = bar_type

    # Assert
    assert configurator.form.end == last.isoformat()
    assert configurator.form.start == max(first, last - dt.timedelta(days=30)).isoformat()


def test_sample_series_say_they_are_synthetic_and_imported_ones_do_not(tmp_path, configurator):
    # Arrange: a catalog with one imported series (its own workbench), beside the sample one.
    from services.catalog.importer import ImportOptions
    from services.workbench import Workbench

    index = pd.date_range("2024-01-02 00:01", periods=600, freq="1min")
    index = index[(index <= "2024-01-02 02:00") | (index >= "2024-01-02 07:01")]
    path = tmp_path / "bars.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0, "high": 10.5,
                  "low": 9.5, "close": 10.25, "volume": 3}).to_csv(path, index=False)
    imported = Workbench.open(state_dir=tmp_path / "state", catalog=str(tmp_path / "catalog"))
    try:
        imported.catalog_writer.import_file(str(path),
                                            ImportOptions(instrument_id="BTCUSDT-PERP.BINANCE"))

        # Act
        other = BacktestConfigurator(workbench=imported)

        # Assert: the sample's series is labelled; the imported one is not, and its hole shows.
        assert configurator.form._sample_note.visible
        assert "This series was generated by the workbench" in configurator.form._sample_note.object
        assert not other.form._sample_note.visible
        assert other.form._coverage.object == (
            "stored bars with holes: data 2024-01-02 00:01\u20132024-01-02 02:00 and "
            "2024-01-02 07:01\u20132024-01-02 10:00 UTC, 300 rows")
    finally:
        imported.database.dispose()


def test_strategy_change_shows_that_templates_parameters(configurator):
    # Act
    configurator.form.strategy = "bb_mean_reversion"

    # Assert
    names = {w.name for w in configurator.__panel__().select(pn.widgets.Widget)}
    assert "Fast EMA period (bars)" not in names
    assert set(configurator.spec().parameters) == set(
        configurator.workbench.templates.strategy("bb_mean_reversion").parameters)
    assert configurator.spec().strategy == "bb_mean_reversion"


# -- spec ------------------------------------------------------------------------------------
def test_spec_reflects_the_widgets(workbench, configurator):
    # Arrange
    last = workbench.catalog.backtestable_series(AAPL_BARS).last.date()
    configurator.form.bar_type = AAPL_BARS

    # Act: what a user does in the form.
    _widget(configurator, "Fast EMA period (bars)").value = "7"
    _widget(configurator, "Slow EMA period (bars)").value = "42"
    _widget(configurator, "Trade size (instrument units)").value = "25.5"
    _widget(configurator, "Starting balance (USD)").value = "250000"
    _widget(configurator, "OMS type").value = "HEDGING"
    _widget(configurator, "Start (UTC)").value = f"{last - dt.timedelta(days=14)} 09:30"
    _widget(configurator, "End (UTC)").value = (last - dt.timedelta(days=7)).isoformat()
    _widget(configurator, "Label").value = "from the form"
    spec = configurator.spec()

    # Assert
    assert spec.strategy == "ema_cross" and spec.bar_type == AAPL_BARS
    assert spec.parameters == {"fast_ema_period": 7, "slow_ema_period": 42, "trade_size": "25.5"}
    assert spec.start == f"{last - dt.timedelta(days=14)}T09:30:00"
    # The end day is included: the range runs to the start of the next day.
    assert spec.end == (last - dt.timedelta(days=6)).isoformat()
    assert spec.venue.starting_balance == "250000"
    assert spec.venue.oms_type == "HEDGING"
    assert spec.venue.currency == "USD"
    assert spec.label == "from the form"


def test_spec_runs_to_the_last_bar_when_the_end_is_the_last_day(configurator):
    configurator.form.bar_type = BTC_BARS

    assert configurator.spec().end is None


def test_decimal_parameters_are_submitted_as_exact_text(configurator):
    configurator.form.bar_type = BTC_BARS

    _widget(configurator, "Trade size (instrument units)").value = "0.3"

    assert configurator.spec().parameters["trade_size"] == "0.3"


# -- invalid input ---------------------------------------------------------------------------
def test_fast_period_not_shorter_than_slow_is_refused_naming_the_field(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    _widget(configurator, "Fast EMA period (bars)").value = "50"
    _widget(configurator, "Slow EMA period (bars)").value = "20"

    # Act
    configurator.param.trigger("run")

    # Assert
    assert configurator.message_kind == "danger"
    assert "fast_ema_period" in configurator.message
    assert "fast EMA period must be shorter than the slow EMA period" in configurator.message
    assert configurator.run_id is None and configurator.status == ""
    assert _run_ids(workbench) == before


def test_out_of_bounds_value_never_reaches_a_run(workbench, configurator):
    """Below the template's minimum: said under the field as typed, Run disabled, and a Run
    that was clicked anyway is refused naming the field."""
    # Arrange
    before = _run_ids(workbench)

    # Act
    _widget(configurator, "Fast EMA period (bars)").value = "1"

    # Assert
    assert configurator.form.problems == ["Fast EMA period: must be >= 2, was '1'"]
    assert configurator._run_button.disabled
    configurator.param.trigger("run")
    assert configurator.message_kind == "danger"
    assert "Fast EMA period: must be >= 2, was '1'" in configurator.message
    assert _run_ids(workbench) == before


@pytest.mark.parametrize(("typed", "problem"), [
    ("abc", "Fast EMA period: must be a whole number, was 'abc'"),
    ("7.5", "Fast EMA period: must be a whole number, was '7.5'"),
    ("", "Fast EMA period: enter a value (e.g. 10)"),
])
def test_a_value_that_is_not_a_whole_number_is_an_error_not_the_default(workbench, configurator,
                                                                         typed, problem):
    # Arrange
    before = _run_ids(workbench)
    fast = _widget(configurator, "Fast EMA period (bars)")

    # Act: as the user types (every key press reaches the form).
    fast.value_input = typed

    # Assert: one line under the field naming it and the value; Run waits; nothing runs.
    assert configurator.form.problems == [problem]
    errors = [p for p in configurator.__panel__().select(pn.pane.Markdown)
              if "field-error" in p.css_classes and p.visible]
    assert [e.object for e in errors] == [problem]
    assert configurator._run_button.disabled and problem in configurator._fix_note.object
    configurator.param.trigger("run")  # a click that arrived before the check
    assert configurator.message_kind == "danger" and problem in configurator.message
    assert _run_ids(workbench) == before
    with pytest.raises(ValidationError):
        configurator.spec()

    # Act: fixed.
    fast.value_input = "12"

    # Assert
    assert configurator.form.problems == [] and not configurator._run_button.disabled
    assert not any(e.visible for e in errors)
    assert configurator.spec().parameters["fast_ema_period"] == 12


def test_reversed_dates_are_refused_naming_the_days_entered(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    configurator.form.bar_type = AAPL_BARS

    # Act
    _widget(configurator, "Start (UTC)").value = "2024-12-10"
    _widget(configurator, "End (UTC)").value = "2024-12-05"

    # Assert: the days as entered; the End day is included, so the message cannot name the
    # day after it.
    (problem,) = configurator.form.problems
    assert "End 2024-12-05 is before Start 2024-12-10" in problem
    assert "2024-12-06" not in problem
    assert configurator._run_button.disabled
    configurator.param.trigger("run")
    assert "End 2024-12-05 is before Start 2024-12-10" in configurator.message
    assert "2024-12-06" not in configurator.message
    assert _run_ids(workbench) == before


def test_a_one_day_range_runs_that_whole_day(workbench, configurator):
    """End is inclusive: Start = End is one day of bars, not an empty range."""
    configurator.form.bar_type = AAPL_BARS

    configurator.form.start = configurator.form.end = "2024-12-05"

    assert configurator.form.problems == []
    spec = configurator.spec()
    assert (spec.start, spec.end) == ("2024-12-05", "2024-12-06")
    assert "included" in _widget(configurator, "End (UTC)").description


def test_start_and_end_take_a_time_of_day_the_end_included(workbench, configurator):
    # Arrange
    configurator.form.bar_type = AAPL_BARS

    # Act: typed as the Catalog page takes them
    _widget(configurator, "Start (UTC)").value = "2024-12-05 14:30"
    _widget(configurator, "End (UTC)").value = "2024-12-06T15:00"

    # Assert: the instants themselves, the End included (the 15:00 bar closes then)
    assert configurator.form.problems == []
    spec = configurator.spec()
    assert (spec.start, spec.end) == ("2024-12-05T14:30:00", "2024-12-06T15:00:00")


def test_a_date_that_is_no_date_is_named_under_the_fields_as_typed(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    configurator.form.bar_type = AAPL_BARS

    # Act
    _widget(configurator, "Start (UTC)").value = "abc"
    _widget(configurator, "End (UTC)").value = "2024-13-01"

    # Assert: both named at once, the run refused
    start, end = configurator.form.problems
    assert start.startswith("Start: not an ISO 8601 date or time, was 'abc'")
    assert end.startswith("End: not an ISO 8601 date or time, was '2024-13-01'")
    assert configurator._run_button.disabled
    configurator.param.trigger("run")
    assert "'abc'" in configurator.message and _run_ids(workbench) == before


def test_changing_the_bar_type_keeps_the_typed_strategy_parameters(configurator):
    # Arrange
    _widget(configurator, "Fast EMA period (bars)").value = "7"
    _widget(configurator, "Slow EMA period (bars)").value = "42"

    # Act
    configurator.form.bar_type = BTC_BARS

    # Assert
    parameters = configurator.spec().parameters
    assert (parameters["fast_ema_period"], parameters["slow_ema_period"]) == (7, 42)


def test_dates_outside_the_data_are_refused_naming_the_field(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    configurator.form.bar_type = EURUSD_BARS  # quotes cover 2024-Q1 only
    configurator.form.start, configurator.form.end = "2024-06-01", "2024-06-10"

    # Act
    configurator.param.trigger("run")

    # Assert
    assert configurator.message_kind == "danger"
    assert "start: 2024-06-01" in configurator.message
    assert "outside the data" in configurator.message
    assert configurator.run_id is None
    assert _run_ids(workbench) == before


def test_wrong_account_currency_is_refused_naming_the_field(workbench, configurator):
    before = _run_ids(workbench)
    configurator.form.bar_type = BTC_BARS
    configurator.form.currency = "EUR"

    configurator.param.trigger("run")

    assert configurator.message_kind == "danger"
    assert "venue.currency" in configurator.message and "USDT" in configurator.message
    assert _run_ids(workbench) == before


# -- a run -----------------------------------------------------------------------------------
def test_valid_run_is_submitted_polled_and_completed(workbench, configurator):
    # Arrange: one week of AAPL bars runs in seconds.
    last = workbench.catalog.backtestable_series(AAPL_BARS).last.date()
    configurator.form.bar_type = AAPL_BARS
    configurator.form.start = (last - dt.timedelta(days=10)).isoformat()
    configurator.form.end = (last - dt.timedelta(days=3)).isoformat()
    configurator.label = "configurator test"

    # Act: submit
    configurator.param.trigger("run")

    # Assert: queued; a second click while it is in progress queues a second run behind it.
    first = configurator.run_id
    assert first is not None, configurator.message
    assert configurator.status in ("Queued", "Running")
    assert configurator.message_kind == "info" and first in configurator.message
    assert configurator.completed_run is None
    configurator.param.trigger("run")
    run_id = configurator.run_id
    assert run_id != first and f"joins the queue behind `{first}`" in configurator.message
    assert _run_ids(workbench) == {first, run_id}

    # Act: wait for the workers, then read the state as the live state would push it.
    workbench.backtests.wait(first, timeout=RUN_TIMEOUT_S)
    info = workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    configurator.poll()

    # Assert
    assert info.status == "Completed", info.error
    assert configurator.status == "Completed"
    assert configurator.progress == 100
    assert configurator.completed_run == run_id
    assert configurator.message_kind == "success"
    assert f"./results?run={run_id}" in configurator.message
    assert f"{info.num_trades:,} trades" in configurator.message
    # The run is what the form described.
    stored = workbench.backtests.get(run_id)
    assert stored.label == "configurator test"
    assert stored.parameters == {"fast_ema_period": 10, "slow_ema_period": 20, "trade_size": "100"}
    assert stored.start.date() == last - dt.timedelta(days=10)


def test_poll_reports_a_run_that_did_not_complete(runs_workbench, failed_run):
    # Arrange: the component tracks a run that then fails (its worker died).
    configurator = BacktestConfigurator(workbench=runs_workbench)
    configurator.run_id = failed_run

    # Act
    configurator.poll()

    # Assert
    assert configurator.status == "Failed"
    assert configurator.message_kind == "danger"
    assert failed_run in configurator.message and "Interrupted" in configurator.message
    assert configurator.completed_run is None


def test_poll_without_a_run_does_nothing(configurator):
    configurator.poll()

    assert configurator.status == "" and configurator.message == ""


def test_poll_of_an_unknown_run_says_so(configurator):
    configurator.run_id = "no-such-run"

    configurator.poll()

    assert configurator.message_kind == "danger"
    assert "no-such-run" in configurator.message
