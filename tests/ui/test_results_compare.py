"""A user makes two runs in the browser, compares them, downloads reports and zooms to a trade.

Drives the real server (see conftest.py) with Chromium as a user would. The two runs are made
once for the module, on the backtest page in two tabs at once (the server runs them in
parallel); every page must be free of tracebacks and browser console errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from services.formatting import format_duration, format_number, format_price, format_quantity
from tests.ui.conftest import VIEWPORT, choose_strategy, sign_in

pytestmark = pytest.mark.ui

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
# A month of AAPL 1-minute bars runs in seconds; the rest is worker start-up on a busy machine.
RUN_TIMEOUT_MS = 180_000
# Loading a run's charts and tables, or comparing two runs, on a busy machine.
RENDER_TIMEOUT_MS = 60_000
STRATEGIES = ("ema_cross", "simple_momentum")
# The price chart of the trades tab, as the ResultsViewer titles it.
PRICE_CHART = "Price with entries and exits"
# The x ranges (ms since the epoch) of the figures with that title in the page's Bokeh
# documents (the charts tab has one too; its x range is linked to the first trades-tab chart).
PRICE_RANGES_JS = """title => {
  const out = [];
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title != null && m.title.text === title) out.push([m.x_range.start, m.x_range.end]);
  return out; }"""
DAY_MS = 86_400_000
# The time charts of the charts tab (components.charts.time_charts), linked in zoom.
TIME_CHARTS = ("Mark-to-market equity vs buy-and-hold", "Underwater (worst 5 drawdowns shaded)",
               PRICE_CHART, "Net position", "Rolling 30-day Sharpe and volatility")
X_RANGES_JS = """titles => {
  const out = {};
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title != null && titles.includes(m.title.text))
        out[m.title.text] = [m.x_range.start, m.x_range.end];
  return out; }"""


def _assert_no_traceback(page: Page) -> None:
    assert "Traceback" not in page.content()
    expect(page.get_by_text(re.compile("Traceback"))).to_have_count(0)  # shadow roots too


def _watch(page: Page, problems: list[str]) -> Page:
    page.on("console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return page


@pytest.fixture(scope="module")
def runs(browser, server) -> dict[str, str]:
    """Run ids by strategy: ema_cross and simple_momentum on AAPL's last month (the page's
    default dates), each submitted from its own tab of the backtest page."""
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server)
    problems: list[str] = []
    try:
        pages = {}
        for strategy in STRATEGIES:
            page = pages[strategy] = _watch(context.new_page(), problems)
            page.goto(server.url + "/backtest")
            run_button = page.get_by_role("button", name="Run backtest")
            expect(run_button).to_be_enabled(timeout=RENDER_TIMEOUT_MS)
            choose_strategy(page, strategy)
            page.get_by_label("Bar type").select_option(AAPL_BARS)
            # The form has followed both choices on the server before Run is clicked.
            expect(page.get_by_label("Currency")).to_have_value("USD")
            expect(page.get_by_label("Trade size")).to_have_value("100")
            field = "Fast EMA period" if strategy == "ema_cross" else "Breakout lookback"
            expect(page.get_by_label(field)).to_be_visible()

        ids = {}
        for strategy, page in pages.items():
            before = server.run_ids()
            page.get_by_role("button", name="Run backtest").click()
            expect(page.get_by_text(re.compile(r"Run \S+ submitted"))).to_be_visible(timeout=30_000)
            new = server.run_ids() - before
            assert len(new) == 1, f"expected one new run, got {sorted(new)}"
            ids[strategy] = new.pop()
        for strategy, page in pages.items():
            link = page.get_by_role("link", name="Open the results")
            expect(link).to_have_attribute("href", f"./results?run={ids[strategy]}",
                                           timeout=RUN_TIMEOUT_MS)
            expect(page.get_by_text(re.compile(r"completed: [1-9][\d,]* trades"))).to_be_visible()
            _assert_no_traceback(page)
        assert problems == [], problems
        return ids
    finally:
        context.close()


def _choose_runs(page: Page, run_ids: list[str]) -> None:
    """Pick runs in the "Runs to compare" box as a user does: open it, click each, close it."""
    page.get_by_role("combobox").click()
    for run_id in run_ids:
        page.get_by_role("option", name=re.compile(f"· {re.escape(run_id)}$")).click()
    page.keyboard.press("Escape")


def _tab(page: Page, name: str):
    return page.locator(".bk-tab", has_text=re.compile(f"^{name}$"))


def _open_results(open_page, run_id: str, strategy: str) -> Page:
    page = open_page(f"/results?run={run_id}")
    expect(page.get_by_role("heading", name=f"{strategy} on {AAPL_BARS}")).to_be_visible(
        timeout=RENDER_TIMEOUT_MS)
    # The charts tab has drawn: the page's widgets are live.
    expect(page.locator("canvas").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    return page


def _stat(page: Page, label: str) -> str:
    card = page.locator(".stat-card").filter(
        has=page.locator(".stat-label", has_text=re.compile(f"^{label}$")))
    return card.locator(".stat-value").inner_text().strip()


# -- compare ---------------------------------------------------------------------------------------
def test_compare_two_runs_and_download_the_report(open_page, runs):
    # Arrange
    page = open_page("/compare")
    a, b = runs["ema_cross"], runs["simple_momentum"]
    hint = page.get_by_text("Choose two or more completed runs to compare.")
    expect(hint).to_be_visible()

    # Act
    _choose_runs(page, [a, b])

    # Assert: metrics side by side (the best of each ranked row marked), charts, parameters.
    total_return = page.get_by_text("Returns: Total return", exact=True)
    expect(total_return).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(hint).to_be_hidden()
    for run_id, strategy in ((a, "ema_cross"), (b, "simple_momentum")):
        # Columns named as the user knows the run; its id on hover.
        expect(page.locator(f'th[title="{run_id}"]').first).to_contain_text(strategy)
    expect(page.locator("td.best").first).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    _tab(page, "Parameters").click()
    strategy_row = page.locator("tr", has=page.locator("td", has_text=re.compile("^strategy$")))
    expect(strategy_row).to_have_class("best")
    expect(strategy_row).to_contain_text("ema_cross")
    expect(strategy_row).to_contain_text("simple_momentum")

    # Act: download the comparison report.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download comparison report").click()

    # Assert
    report = download.value
    assert report.suggested_filename == f"comparison-{a}-{b}.html"
    text = Path(report.path()).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Comparison of 2 backtests</title>" in text
    assert a in text and b in text
    assert 'class="best"' in text


def test_the_address_bar_follows_the_runs_chosen(open_page, runs, server):
    # Arrange
    a, b = runs["ema_cross"], runs["simple_momentum"]
    page = _open_results(open_page, a, "ema_cross")
    row_of_b = page.locator(".tabulator-row", has=page.locator("[tabulator-field=run_id]",
                                                               has_text=re.compile(f"^{b}$")))

    # Act: pick the other run in the runs table.
    row_of_b.locator("[tabulator-field=name]").click()

    # Assert: it is shown, its row stays highlighted, and the URL names it.
    expect(page.get_by_role("heading", name=f"simple_momentum on {AAPL_BARS}")).to_be_visible(
        timeout=RENDER_TIMEOUT_MS)
    expect(row_of_b).to_have_class(re.compile(r"\btabulator-selected\b"))
    expect(page).to_have_url(f"{server.url}/results?run={b}")

    # Act: compare both runs, then reload the address the page shows.
    page = open_page("/compare")
    _choose_runs(page, [a, b])

    # Assert
    expect(page).to_have_url(f"{server.url}/compare?run={a}&run={b}", timeout=RENDER_TIMEOUT_MS)
    page.reload()
    expect(page.get_by_text("Returns: Total return", exact=True)).to_be_visible(
        timeout=RENDER_TIMEOUT_MS)
    for run_id, strategy in ((a, "ema_cross"), (b, "simple_momentum")):
        # Columns named as the user knows the run; its id on hover.
        expect(page.locator(f'th[title="{run_id}"]').first).to_contain_text(strategy)


# -- one run ---------------------------------------------------------------------------------------
def test_results_page_downloads_the_report_and_the_trades(open_page, runs):
    # Arrange
    run_id = runs["ema_cross"]
    page = _open_results(open_page, run_id, "ema_cross")
    trades = int(_stat(page, "Trades").replace(",", ""))
    assert trades > 0

    # Act
    with page.expect_download() as download:
        page.get_by_role("button", name="Download HTML report").click()

    # Assert
    report = download.value
    assert report.suggested_filename == f"report-{run_id}.html"
    text = Path(report.path()).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Backtest report: ema_cross</title>" in text
    assert f"run {run_id}" in text and f"<h2>Trades ({trades:,})</h2>" in text

    # Act: the trades as CSV.
    with page.expect_download() as download:
        page.get_by_role("button", name="Trades CSV").click()

    # Assert: one row per trade, as many as the card says.
    assert download.value.suggested_filename == f"trades-{run_id}.csv"
    assert len(pd.read_csv(download.value.path())) == trades


def test_clicking_a_trade_zooms_the_price_chart_to_it(open_page, runs):
    # Arrange: the trades tab, with its price chart over the whole run.
    page = _open_results(open_page, runs["ema_cross"], "ema_cross")
    _tab(page, "Trades").click()
    # Rows of the trades table (the runs table above it has no side column).
    rows = page.locator(".tabulator-row", has=page.locator("[tabulator-field=side]",
                                                           has_text=re.compile("^(LONG|SHORT)$")))
    expect(rows.first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("canvas").first).to_be_visible()
    page.wait_for_function(f"() => ({PRICE_RANGES_JS})({PRICE_CHART!r}).length > 0")
    ranges = page.evaluate(PRICE_RANGES_JS, PRICE_CHART)
    assert all(end - start > 7 * DAY_MS for start, end in ranges), ranges  # about a month
    canvases = [c.element_handle() for c in page.locator("canvas").all() if c.is_visible()]
    assert canvases

    # Act: click the third trade.
    row = rows.nth(2)
    entry = pd.Timestamp(row.locator("[tabulator-field=entry_time]").inner_text(), tz="UTC")
    exit_ = pd.Timestamp(row.locator("[tabulator-field=exit_time]").inner_text(), tz="UTC")
    row.locator("[tabulator-field=side]").click()

    # Assert: a new chart replaced the old one, spanning the trade and not much more.
    page.wait_for_function("els => els.every(e => !e.isConnected)", arg=canvases,
                           timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("canvas").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    ranges = page.evaluate(PRICE_RANGES_JS, PRICE_CHART)
    zoomed = [(start, end) for start, end in ranges if end - start < DAY_MS]
    assert len(zoomed) == 1, ranges
    start, end = zoomed[0]
    opened, closed = entry.timestamp() * 1000, exit_.timestamp() * 1000
    assert start <= opened < closed <= end, (zoomed, entry, exit_)


def test_zooming_one_time_chart_zooms_the_others(open_page, runs):
    # Arrange: the charts tab, every time chart over the whole run.
    page = _open_results(open_page, runs["ema_cross"], "ema_cross")
    page.wait_for_function(f"() => Object.keys(({X_RANGES_JS})({list(TIME_CHARTS)!r})).length"
                           f" === {len(TIME_CHARTS)}", timeout=RENDER_TIMEOUT_MS)
    before = page.evaluate(X_RANGES_JS, list(TIME_CHARTS))
    start, end = before[TIME_CHARTS[0]]
    assert all(r == [start, end] for r in before.values()), before

    # Act: box-zoom (the active drag tool) across the middle fifth of the equity chart.
    canvas = page.locator("canvas").first
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y + 20, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.6, y + 40, steps=5)
    page.mouse.up()

    # Assert: every time chart shows the same, narrower window.
    page.wait_for_function(
        f"() => {{ const r = ({X_RANGES_JS})({list(TIME_CHARTS)!r})[{TIME_CHARTS[0]!r}];"
        f" return r[1] - r[0] < {(end - start) * 0.5}; }}", timeout=RENDER_TIMEOUT_MS)
    after = page.evaluate(X_RANGES_JS, list(TIME_CHARTS))
    zoomed = after[TIME_CHARTS[0]]
    assert start < zoomed[0] < zoomed[1] < end, (before, after)
    assert all(r == zoomed for r in after.values()), after


def test_the_trades_table_reads_prices_money_and_durations_as_the_workbench_does(
        open_page, runs, server):
    # Arrange: the run's first trade as stored; AAPL prices have 2 decimals, sizes none.
    run_id = runs["ema_cross"]
    first = pd.read_parquet(server.state_dir / "runs" / run_id / "results" / "positions.parquet"
                            ).sort_values("closed", kind="stable").iloc[0]
    page = _open_results(open_page, run_id, "ema_cross")

    # Act
    _tab(page, "Trades").click()
    row = page.locator(".tabulator-row", has=page.locator(
        "[tabulator-field=side]", has_text=re.compile("^(LONG|SHORT)$"))).first
    expect(row).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    # Assert
    expect(row.locator("[tabulator-field=entry_price]")).to_have_text(
        format_price(first["avg_px_open"], 2))
    expect(row.locator("[tabulator-field=quantity]")).to_have_text(
        format_quantity(first["quantity"], 0))
    expect(row.locator("[tabulator-field=pnl]")).to_have_text(
        format_number(first["realized_pnl"], 2))
    expect(row.locator("[tabulator-field=duration]")).to_have_text(
        format_duration((first["closed"] - first["opened"]).total_seconds()))
    expect(page.locator(".tabulator-col-title", has_text="PnL (USD)")).to_be_visible()


# Elements reaching past the right edge of the window, shadow roots included. What a
# component's own clipping or scrolling box holds inside the window (a table's body, a chart's
# frame) does not count; the page's own boxes (the template's) clip what is then lost or
# scrolled sideways, which is what this looks for.
OVERFLOW_JS = """() => {
  const out = [];
  const width = window.innerWidth;
  const page = new Set(['container', 'content', 'main', 'header', 'sidebar']);
  const parent = (el) => el.parentElement || (el.getRootNode && el.getRootNode().host) || null;
  const clipped = (el) => {
    for (let p = parent(el); p && p.tagName !== 'BODY'; p = parent(p)) {
      if (page.has(p.id)) return false;
      if (getComputedStyle(p).overflowX !== 'visible'
          && p.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
      const box = el.getBoundingClientRect();
      if (box.width && box.height && box.right > width + 1 && !clipped(el))
        out.push(`${el.tagName}.${el.className} "${(el.textContent || '').trim().slice(0, 30)}"`
                 + ` ends at ${Math.round(box.right)} px`);
    }
  };
  walk(document);
  return out; }"""
PAGES = ("/", "/backtest", "/runs", "/sweeps", "/results", "/compare", "/catalog", "/engines",
         "/pipeline", "/account", "/users")


@pytest.mark.parametrize("width", [1440, 1280])
def test_no_page_is_wider_than_the_screen(browser, server, runs, width):
    # Arrange: the pages with runs to show (results and compare of the two module runs).
    context = browser.new_context(viewport={"width": width, "height": 900})
    sign_in(context, server)
    page = context.new_page()
    paths = [p for p in PAGES if p not in ("/results", "/compare")]
    paths += [f"/results?run={runs['ema_cross']}",
              f"/compare?run={runs['ema_cross']}&run={runs['simple_momentum']}"]
    try:
        wider = {}
        for path in paths:
            # Act
            page.goto(server.url + path)
            expect(page.get_by_role("heading", level=2).first).to_be_visible(
                timeout=RENDER_TIMEOUT_MS)
            page.wait_for_load_state("networkidle")
            beyond = page.evaluate(OVERFLOW_JS)
            if beyond:
                wider[path] = beyond[:5]
        # Assert
        assert not wider, f"at {width} px these reach past the screen's edge: {wider}"
    finally:
        context.close()
