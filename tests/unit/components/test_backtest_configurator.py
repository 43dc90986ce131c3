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
    assert configurator.param.strategy.objects == workbench.templates.strategy_names()
    shipped = {"ema_cross", "bb_mean_reversion", "simple_momentum"}
    assert shipped <= set(configurator.param.strategy.objects)
    assert configurator.strategy == "ema_cross"
    assert configurator.param.bar_type.objects == bar_types
    assert set(bar_types) == {AAPL_BARS, BTC_BARS, EURUSD_BARS}
    assert configurator.bar_type == bar_types[0]
    assert configurator.message == ""  # nothing wrong, nothing to say


def test_widgets_show_the_templates_parameters_with_their_defaults(configurator):
    assert _widget(configurator, "Fast ema period").value == 10
    assert _widget(configurator, "Slow ema period").value == 20
    fast = _widget(configurator, "Fast ema period")
    # The template's bounds are stated, not enforced in the browser (which would silently revert
    # a typed value); the service refuses out-of-range values with a message.
    assert (fast.start, fast.end) == (None, None)
    assert "Allowed: 2 to 1000." in fast.description
    assert _widget(configurator, "Starting balance").value == 1_000_000
    assert _widget(configurator, "Oms type").value == "NETTING"


@pytest.mark.parametrize(("bar_type", "currency", "trade_size"), [
    (EURUSD_BARS, "USD", "100000"),  # CurrencyPair
    (BTC_BARS, "USDT", "0.1"),       # CryptoPerpetual
    (AAPL_BARS, "USD", "100"),       # Equity
])
def test_bar_type_sets_currency_and_default_trade_size(configurator, bar_type, currency,
                                                       trade_size):
    # Arrange: start from a different instrument, so the change is a real change.
    configurator.bar_type = EURUSD_BARS if bar_type != EURUSD_BARS else BTC_BARS

    # Act
    configurator.bar_type = bar_type

    # Assert
    assert configurator.currency == currency
    spec = configurator.spec()
    assert spec.parameters["trade_size"] == trade_size
    assert spec.venue.currency == currency
    assert float(_widget(configurator, "Trade size").value) == float(trade_size)


@pytest.mark.parametrize("bar_type", [AAPL_BARS, BTC_BARS, EURUSD_BARS])
def test_default_dates_are_the_last_month_inside_the_coverage(workbench, configurator, bar_type):
    # Arrange
    series = workbench.catalog.backtestable_series(bar_type)
    first, last = series.first.date(), series.last.date()

    # Act
    configurator.bar_type = bar_type

    # Assert
    assert first <= configurator.start < configurator.end <= last
    assert configurator.end == last
    assert configurator.start == max(first, last - dt.timedelta(days=30))
    # The pickers only offer days with data.
    picker = _widget(configurator, "Start (UTC)")
    assert (picker.start, picker.end) == (first, last)


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
        assert configurator._sample_note.visible
        assert "This series was generated by the workbench" in configurator._sample_note.object
        assert not other._sample_note.visible
        assert other._coverage.object == (
            "stored bars with holes: data 2024-01-02 00:01\u20132024-01-02 02:00 and "
            "2024-01-02 07:01\u20132024-01-02 10:00 UTC, 300 rows")
    finally:
        imported.database.dispose()


def test_strategy_change_shows_that_templates_parameters(configurator):
    # Act
    configurator.strategy = "bb_mean_reversion"

    # Assert
    names = {w.name for w in configurator.__panel__().select(pn.widgets.Widget)}
    assert "Fast ema period" not in names
    assert set(configurator.spec().parameters) == set(
        configurator.workbench.templates.strategy("bb_mean_reversion").parameters)
    assert configurator.spec().strategy == "bb_mean_reversion"


# -- spec ------------------------------------------------------------------------------------
def test_spec_reflects_the_widgets(workbench, configurator):
    # Arrange
    last = workbench.catalog.backtestable_series(AAPL_BARS).last.date()
    configurator.bar_type = AAPL_BARS

    # Act: what a user does in the form.
    _widget(configurator, "Fast ema period").value = 7
    _widget(configurator, "Slow ema period").value = 42
    _widget(configurator, "Trade size").value = 25.5
    _widget(configurator, "Starting balance").value = 250_000
    _widget(configurator, "Oms type").value = "HEDGING"
    _widget(configurator, "Start (UTC)").value = last - dt.timedelta(days=14)
    _widget(configurator, "End (UTC)").value = last - dt.timedelta(days=7)
    _widget(configurator, "Label").value = "from the form"
    spec = configurator.spec()

    # Assert
    assert spec.strategy == "ema_cross" and spec.bar_type == AAPL_BARS
    assert spec.parameters == {"fast_ema_period": 7, "slow_ema_period": 42, "trade_size": "25.5"}
    assert spec.start == (last - dt.timedelta(days=14)).isoformat()
    # The end day is included: the range runs to the start of the next day.
    assert spec.end == f"{last - dt.timedelta(days=6)}T00:00:00+00:00"
    assert spec.venue.starting_balance == "250000"
    assert spec.venue.oms_type == "HEDGING"
    assert spec.venue.currency == "USD"
    assert spec.label == "from the form"


def test_spec_runs_to_the_last_bar_when_the_end_is_the_last_day(configurator):
    configurator.bar_type = BTC_BARS

    assert configurator.spec().end is None


def test_decimal_parameters_are_submitted_as_exact_text(configurator):
    configurator.bar_type = BTC_BARS

    _widget(configurator, "Trade size").value = 0.3

    assert configurator.spec().parameters["trade_size"] == "0.3"


# -- invalid input ---------------------------------------------------------------------------
def test_fast_period_not_shorter_than_slow_is_refused_naming_the_field(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    _widget(configurator, "Fast ema period").value = 50
    _widget(configurator, "Slow ema period").value = 20

    # Act
    configurator.param.trigger("run")

    # Assert
    assert configurator.message_kind == "danger"
    assert "fast_ema_period" in configurator.message
    assert "fast EMA period must be shorter than the slow EMA period" in configurator.message
    assert configurator.run_id is None and configurator.status == ""
    assert _run_ids(workbench) == before


def test_out_of_bounds_value_never_reaches_a_run(workbench, configurator):
    """Below the template's minimum: refused on entry, or refused on Run naming the field."""
    before = _run_ids(workbench)
    try:
        _widget(configurator, "Fast ema period").value = 1
    except ValueError as e:  # the parameter carries the template's bounds
        assert "fast_ema_period" in str(e)
        assert configurator.spec().parameters["fast_ema_period"] == 10
        return
    configurator.param.trigger("run")
    assert configurator.message_kind == "danger"
    assert "fast_ema_period: must be >= 2" in configurator.message
    assert _run_ids(workbench) == before


def test_changing_the_bar_type_keeps_the_typed_strategy_parameters(configurator):
    # Arrange
    _widget(configurator, "Fast ema period").value = 7
    _widget(configurator, "Slow ema period").value = 42

    # Act
    configurator.bar_type = BTC_BARS

    # Assert
    parameters = configurator.spec().parameters
    assert (parameters["fast_ema_period"], parameters["slow_ema_period"]) == (7, 42)


def test_dates_outside_the_data_are_refused_naming_the_field(workbench, configurator):
    # Arrange
    before = _run_ids(workbench)
    configurator.bar_type = EURUSD_BARS  # quotes cover 2024-Q1 only
    configurator.start = dt.date(2024, 6, 1)
    configurator.end = dt.date(2024, 6, 10)

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
    configurator.bar_type = BTC_BARS
    configurator.currency = "EUR"

    configurator.param.trigger("run")

    assert configurator.message_kind == "danger"
    assert "venue.currency" in configurator.message and "USDT" in configurator.message
    assert _run_ids(workbench) == before


# -- a run -----------------------------------------------------------------------------------
def test_valid_run_is_submitted_polled_and_completed(workbench, configurator):
    # Arrange: one week of AAPL bars runs in seconds.
    last = workbench.catalog.backtestable_series(AAPL_BARS).last.date()
    configurator.bar_type = AAPL_BARS
    configurator.start = last - dt.timedelta(days=10)
    configurator.end = last - dt.timedelta(days=3)
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
