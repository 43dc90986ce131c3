"""Standalone HTML reports of real runs: what the file holds, how it renders offline, the CLI.

Short real backtests on the generated sample catalog (run once per module, in parallel) give a
run report and a comparison report. The file is parsed as HTML (nothing loads from the
network; every section, every trade, the same numbers as the run's statistics), then opened from
``file://`` in an offline Chromium. A three-month BTC run with thousands of trades checks that
the file stays small while keeping every trade.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from app.cli import main as cli
from components import charts
from components.report import (
    comparison_report_html,
    export_comparison_report,
    export_run_report,
    parameter_diff_frame,
    run_report_html,
)
from components.results_viewer import trades_frame
from services.backtest.metric_labels import METRIC_GROUPS, best_index, format_statistic
from services.backtest.spec import BacktestSpec
from services.errors import ValidationError
from services.formatting import format_duration, format_price
from tests.conftest import chromium_path, skip_or_fail

pytestmark = pytest.mark.integration

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
ROBUSTNESS = "Robustness: Monte Carlo of trades and probabilistic Sharpe ratio"
# Two weeks of AAPL 1-minute bars run in seconds; a busy machine queues workers.
RUN_TIMEOUT_S = 300
SECTIONS = ("Summary", "Charts", "Metrics", "Worst drawdowns", ROBUSTNESS, "Trades", "Fills",
            "Orders", "Configuration")
CARD_KEYS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate",
             "profit_factor", "num_trades", "benchmark_return", "final_equity")
LABELS = {key: label for group in METRIC_GROUPS.values() for key, (label, _) in group.items()}
LARGEST_REPORT_BYTES = 5_000_000
# The runs of the comparison report, in its column order.
COMPARED = ("ema", "momentum", "bands")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
# Rendering a report with five linked charts takes a second or two; a loaded machine more.
RENDER_TIMEOUT_MS = 60_000


# -- the runs ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(workbench) -> dict[str, str]:
    """Run ids by name: three strategies on the same two AAPL weeks and three months of BTC
    (thousands of trades). Submitted together so the workers run in parallel; the long one
    first, as it sets the pace."""
    window = {"start": "2024-06-03", "end": "2024-06-17", "bar_type": AAPL_BARS}
    specs = {
        "long": BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01",
                             end="2024-04-01", label="report: long",
                             parameters={"fast_ema_period": 10, "slow_ema_period": 20}),
        "ema": BacktestSpec(strategy="ema_cross", label="report: ema", **window,
                            parameters={"fast_ema_period": 10, "slow_ema_period": 20,
                                        "trade_size": "100"}),
        "momentum": BacktestSpec(strategy="simple_momentum", label="report: momentum", **window,
                                 parameters={"lookback_bars": 30, "breakout_atr_multiple": 0.5}),
        "bands": BacktestSpec(strategy="bb_mean_reversion", label="report: bands", **window,
                              parameters={"bb_period": 30}),
    }
    ids = {name: workbench.backtests.submit(spec) for name, spec in specs.items()}
    for name, run_id in ids.items():
        info = workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
        assert info.status == "Completed", f"{name} run {run_id} ended {info.status}: {info.error}"
    return ids


@pytest.fixture(scope="module")
def results(workbench, runs):
    """``results(name)`` -> the RunResults of that run."""
    return lambda name: workbench.backtests.results(runs[name])


@pytest.fixture(scope="module")
def run_report(tmp_path_factory, workbench, runs) -> Path:
    path = tmp_path_factory.mktemp("report") / "ema.html"
    assert export_run_report(workbench, runs["ema"], path) == path
    return path


@pytest.fixture(scope="module")
def comparison_report(tmp_path_factory, workbench, runs) -> Path:
    path = tmp_path_factory.mktemp("report") / "comparison.html"
    ids = [runs[name] for name in COMPARED]
    assert export_comparison_report(workbench, ids, path) == path
    return path


# -- reading a report ----------------------------------------------------------------------------
class Report(HTMLParser):
    """The parts of a report the tests read: tags, headings, cards, tables and table payloads."""

    _CAPTURE = {"h1", "h2", "h3", "td", "th", "p"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.cards: dict[str, str] = {}
        self.notes: list[str] = []
        self.tables: list[list[tuple[str, list[tuple[str, str]]]]] = []  # rows: (class, cells)
        self.payloads: dict[str, str] = {}
        self._open: tuple[str, str, list[str]] | None = None
        self._label = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        cls = a.get("class", "")
        if tag == "div" and "wb-table" in cls.split():
            self.payloads[a["id"]] = a["data-payload"]
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append((cls, []))
        if tag in self._CAPTURE or (tag == "div" and cls in ("l", "v")):
            self._open = (tag, cls, [])

    def handle_data(self, data):
        if self._open:
            self._open[2].append(data)

    def handle_endtag(self, tag):
        if not self._open or tag != self._open[0]:
            return
        name, cls, parts = self._open
        text = "".join(parts).strip()
        self._open = None
        if name in ("td", "th"):
            self.tables[-1][-1][1].append((text, cls))
        elif name in self.headings:
            self.headings[name].append(text)
        elif name == "p" and "note" in cls.split():
            self.notes.append(text)
        elif cls == "l":
            self._label = text
        elif cls == "v":
            self.cards[self._label] = text

    def table(self, name: str) -> dict:
        """A ``wb-table`` decoded as the report's script decodes it (base64, gzip, JSON)."""
        return json.loads(gzip.decompress(base64.b64decode(self.payloads[name])))

    def rows_by_first_cell(self, table: int) -> dict[str, tuple[str, list[tuple[str, str]]]]:
        return {cells[0][0]: (cls, cells[1:]) for cls, cells in self.tables[table] if cells}


def _column(table: dict, name: str) -> list:
    return table["data"][table["columns"].index(name)]


def _epoch(series: pd.Series) -> list[float]:
    return [ts.value / 1e9 for ts in pd.to_datetime(series, utc=True)]


def _external(url: str) -> bool:
    return bool(re.match(r"^\s*(https?:)?//", url, re.IGNORECASE))


def _assert_self_contained(report: Report) -> None:
    """Nothing the page loads comes from elsewhere (Bokeh's JS mentions a MathJax CDN in a string
    it never loads: tags are what count, not text)."""
    for tag, attrs in report.tags:
        if tag in ("script", "iframe"):
            assert "src" not in attrs, f"<{tag} src={attrs['src']!r}>: scripts must be inline"
        if tag == "link":
            assert "href" not in attrs, f"<link href={attrs['href']!r}>: styles must be inline"
        if tag in ("img", "source", "embed", "video", "audio"):
            for attr in ("src", "href", "srcset"):
                url = attrs.get(attr, "")
                assert not _external(url), f"<{tag} {attr}={url!r}> loads from the network"


# -- the run report ------------------------------------------------------------------------------
def test_run_report_is_one_self_contained_file_with_every_section(run_report, runs):
    # Act
    report = Report(run_report.read_text(encoding="utf-8"))

    # Assert
    _assert_self_contained(report)
    scripts = [a for t, a in report.tags if t == "script"]
    assert len(scripts) >= 3  # Bokeh inlined, the charts, the tables' script
    sections = report.headings["h2"]
    for name in SECTIONS:
        assert any(h == name or h.startswith(f"{name} (") for h in sections), (name, sections)
    assert report.headings["h1"] == ["Backtest report: report: ema"]  # the run's label
    assert set(report.payloads) == {"trades", "fills", "orders"}
    assert runs["ema"] in run_report.read_text(encoding="utf-8")


def test_run_report_holds_every_trade_with_its_pnl(run_report, results):
    # Arrange
    positions = results("ema").positions
    assert len(positions) > 20

    # Act
    report = Report(run_report.read_text(encoding="utf-8"))
    trades = report.table("trades")

    # Assert
    assert trades["rows"] == len(positions)
    assert f"Trades ({len(positions):,})" in report.headings["h2"]
    assert _column(trades, "#") == list(range(1, len(positions) + 1))
    assert _column(trades, "pnl") == pytest.approx(positions["realized_pnl"].tolist(), abs=1e-9)
    assert _column(trades, "entry time") == pytest.approx(_epoch(positions["opened"]))
    assert _column(trades, "exit time") == pytest.approx(_epoch(positions["closed"]))
    assert set(_column(trades, "side")) <= {"LONG", "SHORT"}
    assert _column(trades, "commission") == pytest.approx(positions["commissions"].tolist(),
                                                          abs=1e-9)


def test_run_report_holds_every_fill_and_order_of_a_short_run(run_report, results):
    run = results("ema")

    report = Report(run_report.read_text(encoding="utf-8"))

    assert report.table("fills")["rows"] == len(run.fills)
    assert report.table("orders")["rows"] == len(run.orders)
    assert _column(report.table("fills"), "price") == pytest.approx(run.fills["price"].tolist())
    assert report.notes == []  # nothing was cut


def test_run_report_shows_the_stored_statistics(run_report, results):
    # Arrange
    run = results("ema")
    stats, currency = run.statistics, run.summary["currency"]

    # Act
    report = Report(run_report.read_text(encoding="utf-8"))

    # Assert: the summary cards...
    assert set(report.cards) == {LABELS[k] for k in CARD_KEYS}
    for key in CARD_KEYS:
        assert report.cards[LABELS[key]] == format_statistic(key, stats.get(key), currency), key
    assert report.cards["Final equity"].endswith(" USD")
    assert report.cards["Trades"] == f"{len(run.positions):,}"
    # ...and every metric of every group, in the group tables after the headings.
    metric_tables = [t for t in report.tables if t[0][1][0][0] in set(LABELS.values())]
    shown = {cells[0][0]: cells[1][0] for table in metric_tables for _, cells in table}
    for group in METRIC_GROUPS.values():
        for key, (label, _) in group.items():
            assert shown[label] == format_statistic(key, stats.get(key), currency), key
    assert "nan" not in shown.values() and "inf" not in shown.values()


def _robustness(text: str) -> str:
    """The text of the report's robustness section."""
    section = text.split(f"<h2>{ROBUSTNESS}</h2>", 1)[1].split("</section>", 1)[0]
    return re.sub(r"<[^>]+>", " ", section)


def test_run_report_has_the_monte_carlo_of_its_trades_and_the_psr(run_report, results):
    # Arrange: one position at a time, flat at the end: the trades compound to the run's return.
    run = results("ema")
    days = run.equity["equity"].resample("1D").last().dropna().size

    # Act
    text = run_report.read_text(encoding="utf-8")
    report = Report(text)
    section = " ".join(_robustness(text).split())

    # Assert: the reading, the distributions (this run's final return is the run's) and the
    # charts: the bands and three histograms in one more Bokeh layout.
    assert f"{len(run.positions):,} trades resampled 1,000 times" in section
    distributions = next(t for t in report.tables if t[0][1][1][0] == "This run")
    rows = {cells[0][0]: [c for c, _ in cells[1:]] for _, cells in distributions[1:]}
    assert list(rows) == ["Final return", "Max drawdown", "Longest drawdown (trades)"]
    assert rows["Final return"][0] == format_statistic("total_return",
                                                       run.statistics["total_return"])
    # Two weeks of days: fewer than the PSR needs, and the report says so.
    assert (f"PSR: The run has {days} daily returns; a Sharpe statistic needs at least 20"
            in section)
    assert text.count('data-root-id="') == 3


def test_run_report_lists_the_worst_drawdowns_and_parameters(run_report, results):
    run = results("ema")

    report = Report(run_report.read_text(encoding="utf-8"))

    drawdowns = next(t for t in report.tables if t[0][1][0][0] == "Depth")
    assert [c[0] for c in drawdowns[0][1]] == ["Depth", "Peak", "Trough", "Recovered", "Days"]
    assert [cells[0][0] for _, cells in drawdowns[1:]] == [
        format_statistic("max_drawdown", p["depth"]) for p in run.statistics["worst_drawdowns"]]
    parameters = next(t for t in report.tables if t[0][1][0][0] == "Parameter")
    assert {cells[0][0]: cells[1][0] for _, cells in parameters[1:]} == {
        "fast_ema_period": "10", "slow_ema_period": "20", "trade_size": "100"}


# -- opening it offline --------------------------------------------------------------------------
def _in_own_thread(fn, *args):
    """Run Playwright's sync API in a thread of its own: it cannot start while another sync
    Playwright (the UI tests' session browser, if this session started it) holds this thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-chromium") as pool:
        return pool.submit(fn, *args).result()


def _check_offline_rendering(path: Path, trades: int, shorts: int, first_duration: str,
                             first_price: str) -> float:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1200})
            page = context.new_page()
            errors, requests = [], []
            page.on("console",
                    lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))

            # Act
            page.goto(path.as_uri())

            # Assert: Bokeh drew the charts (on canvases) with nothing from the network.
            expect(page.locator("canvas").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
            assert page.locator("canvas").count() > 5
            # The trades table: decoded in the browser, paged 25 at a time.
            host = page.locator("#trades")
            info = host.locator(".tbl-controls span")
            expect(info).to_have_text(f"1-25 of {trades}")
            expect(host.locator("tr")).to_have_count(26)
            expect(host.locator("th").first).to_have_text("#")
            # Durations travel as seconds and read as everywhere in the workbench (1h17m).
            expect(host.locator("tr").nth(1).locator("td").nth(9)).to_have_text(first_duration)
            # Prices read at the instrument's precision, with separators.
            expect(host.locator("tr").nth(1).locator("td").nth(5)).to_have_text(first_price)
            # Search filters the rows.
            host.get_by_placeholder("Search").fill("SHORT")
            expect(info).to_have_text(f"1-{min(25, shorts)} of {shorts} (filtered from {trades})")
            sides = host.locator("tr td:nth-child(4)").all_inner_texts()
            assert sides and set(sides) == {"SHORT"}, sides
            host.get_by_placeholder("Search").fill("")
            expect(info).to_have_text(f"1-25 of {trades}")
            # Sorting by PnL puts the largest loss first.
            host.locator("th", has_text=re.compile(r"^pnl$")).click()
            expect(host.locator("th", has_text="pnl")).to_have_text("pnl ▲")
            # The fills and orders tables render too.
            expect(page.locator("#fills tr").nth(1)).to_be_visible()
            expect(page.locator("#orders tr").nth(1)).to_be_visible()
            first_pnl = host.locator("tr").nth(1).locator("td").nth(7).inner_text()
            assert errors == [], errors
            assert {u for u in requests if not u.startswith(("file:", "data:", "blob:"))} == set()
            return float(first_pnl.replace(",", ""))
        finally:
            browser.close()


@pytest.mark.ui
def test_run_report_renders_offline_in_chromium(run_report, results):
    # Arrange
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    if chromium_path() is None:
        skip_or_fail("no Chromium on PATH (apt-get install chromium)")
    positions = results("ema").positions
    shorts = int((positions["entry"] == "SELL").sum())
    assert 0 < shorts < len(positions)

    # Act / Assert (in the browser)
    first_duration = format_duration(
        (positions["closed"].iloc[0] - positions["opened"].iloc[0]).total_seconds())
    first_price = format_price(positions["avg_px_open"].iloc[0], 2)  # AAPL: 2 decimals
    first_pnl = _in_own_thread(_check_offline_rendering, run_report, len(positions), shorts,
                               first_duration, first_price)

    assert first_pnl == pytest.approx(positions["realized_pnl"].min(), abs=0.01)


# -- the comparison report -----------------------------------------------------------------------
def test_comparison_report_is_self_contained_and_names_every_run(comparison_report, runs):
    text = comparison_report.read_text(encoding="utf-8")

    report = Report(text)

    _assert_self_contained(report)
    assert report.headings["h1"] == ["Comparison of 3 backtests"]
    assert report.headings["h2"] == ["Metrics", "Equity and drawdown", "Parameters"]
    for name in COMPARED:
        assert runs[name] in text
    assert "different currencies" not in text  # all three are AAPL runs in USD


@pytest.mark.parametrize(("key", "pick"), [
    ("total_return", max), ("sharpe", max), ("max_drawdown", max), ("win_rate", max),
    ("volatility", min), ("commissions", min),
])
def test_comparison_report_marks_the_best_run(comparison_report, results, key, pick):
    # Arrange: the right answer, by hand from each run's statistics.
    values = [results(n).statistics[key] for n in COMPARED]
    assert all(isinstance(v, float | int) for v in values), values
    best = values.index(pick(values))
    if values.count(values[best]) > 1:
        best = None  # a tie has no single winner: nothing is highlighted

    # Act
    report = Report(comparison_report.read_text(encoding="utf-8"))
    metrics = report.rows_by_first_cell(0)
    group = next(g for g, m in METRIC_GROUPS.items() if key in m)
    _, cells = metrics[f"{group}: {LABELS[key]}"]

    # Assert
    expected = ["best" if i == best else "" for i in range(len(COMPARED))]
    assert [cls for _, cls in cells] == expected, (key, values)
    assert [text for text, _ in cells] == [format_statistic(key, v, "USD") for v in values]


def test_comparison_report_marks_nothing_for_unranked_metrics(comparison_report):
    report = Report(comparison_report.read_text(encoding="utf-8"))
    metrics = report.rows_by_first_cell(0)

    for row in ("Trades: Trades", "Returns: Final equity", "Risk: Max drawdown peak"):
        _, cells = metrics[row]
        assert [cls for _, cls in cells] == ["", "", ""], row


def test_comparison_report_highlights_the_settings_that_differ(comparison_report, runs):
    # Arrange: three strategies on the same data: strategy and parameters differ, data does not.
    report = Report(comparison_report.read_text(encoding="utf-8"))

    # Act
    rows = report.rows_by_first_cell(1)

    # Assert
    header = report.tables[1][0][1]
    assert [c for c, _ in header] == ["Setting", *(f"report: {n}" for n in COMPARED)]
    assert rows["strategy"] == ("best", [("ema_cross", ""), ("simple_momentum", ""),
                                         ("bb_mean_reversion", "")])
    assert rows["lookback_bars"] == ("best", [("—", ""), ("30", ""), ("—", "")])
    assert rows["bb_period"] == ("best", [("—", ""), ("—", ""), ("30", "")])
    assert rows["fast_ema_period"] == ("best", [("10", ""), ("—", ""), ("—", "")])
    for same in ("bar_type", "start", "end"):
        assert rows[same][0] == "", same
    assert [c for c, _ in rows["bar_type"][1]] == [AAPL_BARS] * 3
    assert "Highlighted rows differ between runs." in comparison_report.read_text(encoding="utf-8")


def test_parameter_diff_compares_effective_values_not_what_was_typed(results):
    # Arrange: every run traded 100 shares, whether typed or by default.
    compared = [results(n) for n in COMPARED]
    sizes = {r.config["engine"]["strategies"][0]["config"]["trade_size"] for r in compared}
    assert sizes == {"100"}

    # Act
    frame = parameter_diff_frame(compared)

    # Assert
    assert not frame.loc["trade_size", "differs"], frame.loc["trade_size"]


def test_comparison_needs_two_runs(workbench, runs, tmp_path):
    with pytest.raises(ValidationError, match="at least two runs") as error:
        export_comparison_report(workbench, [runs["ema"]], tmp_path / "one.html")

    assert runs["ema"] in str(error.value)
    assert not (tmp_path / "one.html").exists()


# -- the CLI -------------------------------------------------------------------------------------
def _cli(workbench, sample_catalog_path, *args: str) -> int:
    return cli([*args, "--state-dir", str(workbench.settings.state_dir),
                "--database-url", workbench.settings.database_url,
                "--catalog", str(sample_catalog_path)])


def test_cli_writes_the_report_trades_and_equity(workbench, sample_catalog_path, runs, results,
                                                 tmp_path, capsys):
    # Arrange
    run = results("ema")
    html, trades, equity = tmp_path / "r.html", tmp_path / "t.csv", tmp_path / "e.parquet"

    # Act
    code = _cli(workbench, sample_catalog_path, "report", runs["ema"], "-o", str(html),
                "--trades", str(trades), "--equity", str(equity))

    # Assert
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Wrote {html}" in out and f"Wrote {trades}" in out and f"Wrote {equity}" in out
    report = Report(html.read_text(encoding="utf-8"))
    assert report.table("trades")["rows"] == len(run.positions)
    csv = pd.read_csv(trades)
    assert len(csv) == len(run.positions)
    assert list(csv.columns) == list(trades_frame(run).columns)
    assert csv["pnl"].tolist() == pytest.approx(run.positions["realized_pnl"].tolist())
    written = pd.read_parquet(equity)
    assert len(written) == len(run.equity)
    assert written["equity"].tolist() == pytest.approx(run.equity["equity"].tolist())
    assert f"{len(run.positions):,} trades resampled 1,000 times" in _robustness(
        html.read_text(encoding="utf-8"))


def test_cli_writes_a_comparison(workbench, sample_catalog_path, runs, tmp_path, capsys):
    html = tmp_path / "c.html"

    code = _cli(workbench, sample_catalog_path, "report", runs["ema"], "-o", str(html),
                "--compare", runs["momentum"], runs["bands"])

    assert code == 0, capsys.readouterr()
    text = html.read_text(encoding="utf-8")
    assert Report(text).headings["h1"] == ["Comparison of 3 backtests"]
    for name in ("ema", "momentum", "bands"):
        assert runs[name] in text


@pytest.mark.parametrize(("args", "message"), [
    (["report", "no-such-run", "-o", "{tmp}/x.html"], "No backtest run 'no-such-run'"),
    (["report", "{ema}", "-o", "{tmp}/x.html", "--trades", "{tmp}/t.txt"],
     "end it in .csv or .parquet"),
    (["report", "{ema}", "-o", "{tmp}/x.html", "--compare", "no-such-run"],
     "No backtest run 'no-such-run'"),
])
def test_cli_report_errors_are_one_line_and_exit_2(workbench, sample_catalog_path, runs, tmp_path,
                                                   capsys, args, message):
    args = [a.format(tmp=tmp_path, ema=runs["ema"]) for a in args]

    code = _cli(workbench, sample_catalog_path, *args)

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


# -- a long run ----------------------------------------------------------------------------------
def test_long_run_report_keeps_every_trade_and_stays_small(workbench, runs, results, tmp_path):
    # Arrange
    run = results("long")
    assert len(run.positions) > 2_000, len(run.positions)  # three months of 1-minute BTC crosses

    # Act
    path = export_run_report(workbench, runs["long"], tmp_path / "long.html")

    # Assert
    size = path.stat().st_size
    assert size < LARGEST_REPORT_BYTES, f"{size / 1e6:.1f} MB"
    report = Report(path.read_text(encoding="utf-8"))
    trades = report.table("trades")
    assert trades["rows"] == len(run.positions)
    assert _column(trades, "pnl") == pytest.approx(run.positions["realized_pnl"].tolist(), abs=1e-9)
    assert report.cards["Final equity"].endswith(" USDT")
    # Fills and orders may be cut to their budget, and then say so.
    for name, frame in (("fills", run.fills), ("orders", run.orders)):
        rows = report.table(name)["rows"]
        assert 0 < rows <= len(frame)
        if rows < len(frame):
            assert any(f"of {len(frame):,} rows" in n for n in report.notes), report.notes


def test_trade_zoom_of_a_long_run_shows_every_bar_around_the_trade(results):
    # Arrange: a trade from the middle, padded as ResultsViewer pads a clicked trade.
    run = results("long")
    trade = run.positions.iloc[len(run.positions) // 2]
    pad = max(trade["closed"] - trade["opened"], pd.Timedelta(minutes=30))
    xlim = (trade["opened"] - pad, trade["closed"] + pad)

    # Act
    chart = charts.price_chart(run, xlim=xlim)

    # Assert: the close line has every bar of the window, and the chart spans the window.
    window_ms = [ts.value / 1e6 for ts in pd.to_datetime(list(xlim), utc=True)]
    close = chart.select_one({"name": "close"}).data_source.data
    shown = [t for t in close["ts"] if window_ms[0] <= t <= window_ms[1]]
    assert len(shown) == len(close["ts"]) == len(run.equity.loc[xlim[0]:xlim[1]])
    assert (chart.x_range.start, chart.x_range.end) == pytest.approx(window_ms)


def test_time_charts_share_one_x_range_and_ship_decimated_curves(results):
    # Arrange: three months of one-minute bars, far more than a chart draws.
    run = results("long")
    assert len(run.equity) > 10 * charts.MAX_CHART_POINTS

    # Act
    layout = charts.time_charts(run)

    # Assert: one x range for all (zoom one, the others follow), every curve decimated.
    figures = layout.children
    assert [f.title.text for f in figures][:3] == [
        "Mark-to-market equity vs buy-and-hold", "Underwater (worst 5 drawdowns shaded)",
        charts.PRICE_TITLE]
    assert len({id(f.x_range) for f in figures}) == 1
    equity = figures[0].select_one({"name": "equity"}).data_source.data
    assert len(equity["ts"]) <= charts.MAX_CHART_POINTS
    assert max(equity["equity"]) == pytest.approx(run.equity["equity"].max())
    assert min(equity["equity"]) == pytest.approx(run.equity["equity"].min())
    shaded = [a for a in figures[1].center if type(a).__name__ == "BoxAnnotation"]
    assert len(shaded) == len(run.statistics["worst_drawdowns"]) > 0


def test_comparison_of_runs_in_different_currencies_says_so(results):
    html = comparison_report_html([results("ema"), results("long")])

    report = Report(html)

    assert any("different currencies (USD, USDT)" in n for n in report.notes), report.notes
    metrics = report.rows_by_first_cell(0)
    _, cells = metrics["Returns: Final equity"]
    assert cells[0][0].endswith(" USD") and cells[1][0].endswith(" USDT")
    # Returns are comparable across currencies and still ranked.
    values = [results(n).statistics["total_return"] for n in ("ema", "long")]
    assert [c for _, c in metrics["Returns: Total return"][1]] == [
        "best" if i == best_index("total_return", values) else "" for i in range(2)]


def test_comparison_columns_name_the_runs_and_keep_their_ids_on_hover(results):
    runs = [results("ema"), results("long")]
    report = Report(comparison_report_html(runs))

    headings = [(a.get("title"), tag) for tag, a in report.tags if tag == "th" and a.get("title")]
    ids = [r.info.run_id for r in runs]
    assert [title for title, _ in headings] == ids * 2  # metrics, then parameters
    header_rows = [[text for text, _ in cells] for table in report.tables
                   for _, cells in table if cells and cells[0][0] in ("Metric", "Setting")]
    assert len(header_rows) == 2 and header_rows[0][1:] == header_rows[1][1:]
    names = header_rows[0][1:]
    assert len(names) == 2 and not set(names) & set(ids)  # named, not numbered
    assert names == ["report: ema", "report: long"]  # the runs' labels


def test_money_amounts_in_different_currencies_are_not_ranked(results):
    report = Report(comparison_report_html([results("ema"), results("long")]))
    metrics = report.rows_by_first_cell(0)

    money = [f"{group}: {label}" for group, m in METRIC_GROUPS.items()
             for _, (label, kind) in m.items() if kind == "money"]
    marked = [row for row in money if any(cls for _, cls in metrics[row][1])]

    assert marked == []


def test_a_label_with_markup_titles_the_report_as_text(results):
    from dataclasses import replace

    run = results("ema")
    hostile = replace(run, info=replace(run.info, label="<img src=x onerror=alert(1)>"))

    report = Report(run_report_html(hostile))

    assert report.headings["h1"] == ["Backtest report: <img src=x onerror=alert(1)>"]
    assert not any(tag == "img" for tag, _ in report.tags)  # shown, never parsed as a tag
