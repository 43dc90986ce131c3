"""A user configures a backtest in the browser, runs it and studies the results.

Drives the real server (see conftest.py) with Chromium the way a user would: choose in the
selects, type into the inputs, click, follow links. Every page must be free of tracebacks and
browser console errors (checked by the ``page`` fixture at teardown).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import choose_strategy

pytestmark = pytest.mark.ui

# The run the server's state folder starts with, failed at start-up (see conftest.py).
FAILED_RUN_ID = "failed-before-start"
AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
EURUSD_BARS = "EUR/USD.SIM-1-MINUTE-MID-INTERNAL"
# A month of AAPL 1-minute bars runs in seconds; the rest is worker start-up on a busy machine.
RUN_TIMEOUT_MS = 120_000
# How long the page may take to answer a click (validation takes a fraction of a second).
ANSWER_TIMEOUT_MS = 10_000
# A statistic's value as the cards print it: "0.08 %", "-1.234", "1,000,798.95 USD" or "n/a".
STAT_VALUE = re.compile(r"^(n/a|-?[\d,]+(\.\d+)?( %| [A-Z]{3,4})?)$")


def _run_button(page: Page):
    return page.get_by_role("button", name="Run backtest")


def _error_or_submitted(page: Page):
    """Whatever the page answers a click on Run with: a refusal or a submitted run."""
    refused = page.get_by_text("Fix these and run again")
    return refused.or_(page.get_by_text(re.compile(r"Run \S+ submitted")))


def _stat_value(page: Page, label: str) -> str:
    named = page.locator(".stat-label", has_text=re.compile(f"^{label}$"))
    card = page.locator(".stat-card").filter(has=named)
    expect(card).to_have_count(1)
    return card.locator(".stat-value").inner_text().strip()


# -- pages ---------------------------------------------------------------------------------------
def test_overview_shows_engines_queue_last_runs_and_the_catalog(open_page, screenshot):
    page = open_page("/")

    overview = page.locator(".overview-now")
    for heading in ("Engines running now", "Backtest queue", "Last runs"):
        expect(overview.get_by_role("heading", name=heading)).to_be_visible()
    # The run the server found dead at start-up is among the last runs, linked to Results.
    failed = overview.get_by_role("row").filter(has_text="Failed")
    expect(failed.first).to_be_visible()
    expect(failed.first.get_by_role("link")).to_have_attribute(
        "href", f"./results?run={FAILED_RUN_ID}")
    data = page.locator(".overview-data")
    expect(data.get_by_text("Synthetic sample data", exact=False)).to_be_visible()
    for series in (AAPL_BARS, BTC_BARS, "EUR/USD.SIM:quotes"):
        expect(data.get_by_text(series, exact=True)).to_be_visible()
    screenshot("overview")


def test_the_dark_theme_is_remembered_across_pages(open_page, server):
    page = open_page("/")
    root = page.locator("html")
    expect(root).not_to_have_attribute("data-bs-theme", "dark")

    page.get_by_role("button", name="Dark theme").click()

    expect(root).to_have_attribute("data-bs-theme", "dark", timeout=20_000)
    # The last runs' links are light on the dark page (the browser's default blue was not).
    link = page.locator(".overview-grid a").first
    red, green, blue = (int(c) for c in re.findall(r"\d+", link.evaluate(
        "e => getComputedStyle(e).color"))[:3])
    assert (red + green + blue) / 3 > 128, (red, green, blue)
    page.goto(server.url + "/results")
    expect(root).to_have_attribute("data-bs-theme", "dark", timeout=20_000)
    # Its tables take the dark page's colours: no light grey pager band, no white filter boxes.
    transparent = "rgba(0, 0, 0, 0)"
    pager = page.locator(".tabulator-footer").first
    expect(pager).to_be_visible(timeout=20_000)
    assert pager.evaluate("e => getComputedStyle(e).backgroundColor") == transparent
    header_filter = page.locator(".tabulator-header-filter input").first
    assert header_filter.evaluate("e => getComputedStyle(e).backgroundColor") == transparent
    page.get_by_role("button", name="Light theme").click()
    expect(root).not_to_have_attribute("data-bs-theme", "dark", timeout=20_000)


def test_backtest_page_offers_templates_and_catalog_data(open_page, screenshot):
    page = open_page("/backtest")

    expect(page.get_by_text("Synthetic sample data.", exact=True)).to_be_visible()
    strategy, bar_type = page.get_by_label("Strategy", exact=True), page.get_by_label("Bar type")
    expect(strategy).to_have_value("EMA cross (ema_cross)")  # titles, with the template's name
    offered = strategy.locator("option").all_inner_texts()
    for title in ("EMA cross (ema_cross)", "Bollinger band mean reversion (bb_mean_reversion)",
                  "Simple momentum (volatility breakout) (simple_momentum)"):
        assert offered.count(title) == 1, offered
    for name in (AAPL_BARS, BTC_BARS, EURUSD_BARS):
        expect(bar_type.locator("option", has_text=name)).to_have_count(1)
    expect(page.get_by_label("Fast EMA period")).to_have_value("10")
    expect(page.get_by_label("Slow EMA period")).to_have_value("20")
    expect(_run_button(page)).to_be_enabled()
    screenshot("backtest")


# -- the happy path --------------------------------------------------------------------------------
def test_run_a_backtest_and_study_its_results(open_page, server, screenshot):
    page = open_page("/backtest")
    before = server.run_ids()

    # Arrange: choose the strategy and data. The form follows the instrument: a crypto perpetual
    # settles in USDT and trades 0.1 coins, an equity settles in USD and trades 100 shares.
    choose_strategy(page, "ema_cross")
    page.get_by_label("Bar type").select_option(BTC_BARS)
    expect(page.get_by_label("Account currency")).to_have_value("USDT")
    expect(page.get_by_label("Trade size")).to_have_value("0.1")
    page.get_by_label("Bar type").select_option(AAPL_BARS)
    expect(page.get_by_label("Account currency")).to_have_value("USD")
    expect(page.get_by_label("Trade size")).to_have_value("100")
    expect(page.get_by_text("stored bars:", exact=False)).to_contain_text("2024-12-31 21:00")

    # Act: run it, with the default slice (the last month of data).
    _run_button(page).click()

    # Assert: it runs, completes and links its results.
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    link = page.get_by_role("link", name="Open the results")
    expect(link).to_be_visible()
    expect(page.get_by_text(re.compile(r"completed: [\d,]+ trades"))).to_be_visible()
    expect(_run_button(page)).to_be_enabled()
    new_runs = server.run_ids() - before
    assert len(new_runs) == 1, f"expected one new run, got {sorted(new_runs)}"
    run_id = new_runs.pop()
    assert link.get_attribute("href") == f"./results?run={run_id}"
    screenshot("backtest-completed")

    # Act: follow the link.
    link.click()

    # Assert: that run's statistics, charts and tables.
    expect(page).to_have_url(f"{server.url}/results?run={run_id}")
    heading = page.get_by_role("heading", name=f"ema_cross on {AAPL_BARS}")
    expect(heading).to_be_visible(timeout=30_000)
    expect(page.get_by_text(run_id, exact=True).first).to_be_visible()
    for label in ("Total return", "Sharpe", "Max drawdown", "Trades", "Final equity"):
        value = _stat_value(page, label)
        assert STAT_VALUE.match(value), f"{label} card shows {value!r}"
    assert int(_stat_value(page, "Trades").replace(",", "")) > 0
    assert _stat_value(page, "Final equity").endswith(" USD")
    # Bokeh draws the equity, drawdown and price charts on canvases inside shadow roots.
    canvases = page.locator("canvas")
    expect(canvases.first).to_be_visible(timeout=30_000)
    box = canvases.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    tabs = page.locator(".bk-tab")
    expect(tabs.first).to_be_visible()
    assert {"Charts", "Trades", "Fills", "Orders", "Configuration"} <= set(tabs.all_inner_texts())
    screenshot("results")

    # The tables behind the statistics open on their tabs.
    tabs.filter(has_text=re.compile("^Fills$")).click()
    expect(page.get_by_text("liquidity_side", exact=True).first).to_be_visible(timeout=15_000)


# -- bad input -------------------------------------------------------------------------------------
def test_fast_period_not_shorter_than_slow_is_refused_every_time(open_page, server, screenshot):
    """Type fast 50 (slow is 20) and click Run, as a user does; five fresh pages in a row.

    Five attempts, because the defect this guards against is a race: one attempt passes now and
    then even with the defect, five in a row practically never do.
    """
    for attempt in range(5):
        page = open_page("/backtest")
        before = server.run_ids()
        fast = page.get_by_label("Fast EMA period")

        # Act: type, then click Run (leaving the field commits the value).
        fast.fill("50")  # slow stays at its default of 20
        _run_button(page).click()

        # Assert: a clear refusal naming the field, and no run.
        answer = _error_or_submitted(page)
        try:
            expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        finally:
            if attempt == 0:
                screenshot("backtest-invalid")
        error = page.get_by_text(
            "fast_ema_period: the fast EMA period must be shorter than the slow EMA period")
        expect(error).to_be_visible(timeout=1_000)
        expect(page.get_by_text("is invalid", exact=False).first).to_be_visible(timeout=1_000)
        assert server.run_ids() == before, f"attempt {attempt + 1} created a run"
        expect(fast).to_have_value("50")


def test_out_of_bounds_parameter_is_refused_naming_the_field(open_page, server, screenshot):
    page = open_page("/backtest")
    before = server.run_ids()
    fast = page.get_by_label("Fast EMA period")

    # Act: below the template's minimum of 2.
    fast.fill("1")

    # Assert: said as typed, under the field and next to Run, which waits; nothing runs.
    refusal = page.get_by_text("Fast EMA period: must be >= 2, was '1'")
    expect(refusal).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    expect(refusal.first).to_be_visible()
    expect(_run_button(page)).to_be_disabled()
    screenshot("backtest-out-of-bounds")
    assert server.run_ids() == before


@pytest.mark.parametrize("typed", ["abc", "7.5"])
def test_a_whole_number_field_says_what_is_wrong_as_typed(open_page, server, screenshot, typed):
    """The field keeps what was typed and says why it cannot run: no silent default."""
    page = open_page("/backtest")
    before = server.run_ids()
    fast = page.get_by_label("Fast EMA period")

    # Act: type key by key, without leaving the field.
    fast.fill("")
    fast.press_sequentially(typed)

    # Assert
    problem = page.get_by_text(f"Fast EMA period: must be a whole number, was '{typed}'")
    expect(problem.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(_run_button(page)).to_be_disabled()
    expect(fast).to_have_value(typed)
    screenshot(f"backtest-not-a-whole-number-{typed}")

    # Act: fix it.
    fast.fill("12")

    # Assert: the error goes, Run is back; still nothing ran.
    expect(problem).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(_run_button(page)).to_be_enabled()
    assert server.run_ids() == before


def test_reversed_dates_name_the_days_entered(open_page, server, screenshot):
    page = open_page("/backtest")
    page.get_by_label("Bar type").select_option(AAPL_BARS)  # data to 2024-12-31

    # Act: the user types the days.
    page.get_by_label("Start (UTC)").fill("2024-12-10")
    page.get_by_label("End (UTC)").fill("2024-12-05")

    # Assert: the message names the days as entered (the End day is included).
    message = page.get_by_text(re.compile(r"End 2024-12-05 is before Start 2024-12-10"))
    expect(message.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_text(re.compile("2024-12-06"))).to_have_count(0)
    expect(_run_button(page)).to_be_disabled()
    screenshot("backtest-reversed-dates")


def test_a_range_typed_with_times_of_day_runs_between_them(open_page, server, screenshot):
    page = open_page("/backtest")
    page.get_by_label("Bar type").select_option(AAPL_BARS)
    before = server.run_ids()

    # Act: an afternoon, typed with its times; "abc" is named under the field as typed.
    page.get_by_label("Start (UTC)").fill("abc")
    expect(page.get_by_text("Start: not an ISO 8601 date or time, was 'abc'").first).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS)
    expect(_run_button(page)).to_be_disabled()
    page.get_by_label("Start (UTC)").fill("2024-12-05 15:00")
    page.get_by_label("End (UTC)").fill("2024-12-05 18:30")
    expect(_run_button(page)).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)
    _run_button(page).click()

    # Assert: the run covers exactly those instants, the End included.
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    (run_id,) = server.run_ids() - before
    assert server.run_window(run_id) == ("2024-12-05 15:00:00", "2024-12-05 18:30:00")
    screenshot("backtest-time-of-day")


# -- results ---------------------------------------------------------------------------------------
def test_results_for_an_unknown_run_show_no_traceback(open_page, screenshot):
    page = open_page("/results?run=does-not-exist")

    expect(page.get_by_role("heading", name="Backtest results")).to_be_visible()
    expect(page.get_by_role("button", name="Refresh")).to_be_visible()
    screenshot("results-unknown-run")
    # (The ``page`` fixture asserts no traceback and no console error at teardown.)


def test_results_for_an_unknown_run_say_so(open_page):
    page = open_page("/results?run=does-not-exist")

    expect(page.get_by_text(re.compile("does-not-exist")).first).to_be_visible(timeout=3_000)


def test_a_failed_run_shows_why_it_has_no_results(open_page, screenshot):
    message = None
    # Clicking a row sends several events that the server handles concurrently (the nthreads
    # defect of test_fast_period_not_shorter_than_slow_is_refused_every_time), and about one
    # click in twenty leaves the alert hidden although its text is set. Up to three clicks on
    # fresh pages, so that known defect does not make this test flaky; an alert that never
    # shows still fails it.
    for _ in range(3):
        page = open_page("/results")

        # Act: the user picks the run that failed (its worker died when a server stopped).
        page.get_by_text(FAILED_RUN_ID, exact=True).click()

        # Assert
        message = page.get_by_text(
            re.compile(f"Run {FAILED_RUN_ID} is Failed; it has no results: Interrupted"))
        expect(message).to_have_count(1, timeout=15_000)
        try:
            expect(message).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            continue
    expect(message).to_be_visible(timeout=1_000)
    expect(page.locator(".stat-card").first).to_be_hidden()  # no statistics to show
    screenshot("results-failed-run")


def test_runs_table_shows_no_nan_for_runs_without_statistics(open_page):
    page = open_page("/results")

    expect(page.get_by_text(FAILED_RUN_ID, exact=True)).to_be_visible()
    expect(page.get_by_text("NaN", exact=True)).to_have_count(0, timeout=2_000)


# -- several runs from one tab ---------------------------------------------------------------------
def test_a_second_run_joins_the_queue_and_cancel_asks_first(open_page, server, screenshot):
    page = open_page("/backtest")
    page.get_by_label("Bar type").select_option(BTC_BARS)  # a month of BTC: tens of seconds
    expect(page.get_by_label("Trade size")).to_have_value("0.1")
    before = server.run_ids()

    # Act: run, then run again while the first is still queued or running.
    _run_button(page).click()
    expect(page.get_by_text(re.compile(r"Run \S+ submitted"))).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS)
    expect(_run_button(page)).to_be_enabled()
    _run_button(page).click()

    # Assert: the page says the new run waits behind the first.
    said = page.get_by_text(re.compile(r"Run \S+ submitted\. It joins the queue behind \S+, "
                                       "which is still running"))
    expect(said).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    second, first = re.search(r"Run (\S+) submitted\. It joins the queue behind (\S+),",
                              said.inner_text()).groups()
    assert first != second and {first, second}.isdisjoint(before)
    new_runs = [first, second]
    screenshot("backtest-second-run-queued")

    # Act: cancel both on the Runs page; each asks first.
    page = open_page("/runs")
    for run_id in new_runs:
        menu = page.get_by_label("Run", exact=True)  # runs are offered as "name · id"
        menu.select_option(label=menu.locator("option", has_text=run_id).text_content())
        page.get_by_role("button", name="Cancel", exact=True).click()
        question = page.get_by_text(re.compile(f"Cancel run {run_id} \\((Queued|Running)\\)\\?"))
        expect(question).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        if run_id == new_runs[0]:
            screenshot("runs-cancel-asks")
        page.get_by_role("button", name="Cancel run").click()

        # Assert
        expect(page.get_by_text(re.compile(f"Run {run_id} cancelled: now Cancelled"))
               ).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
