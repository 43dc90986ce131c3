"""Benchmark: the workbench's results and report on one large backtest, against NautilusTrader's
own tearsheet.

    python bench/bench_report.py [--bars N] [--fast 10] [--slow 20] [--port P] [--out FILE]
                                 [--skip-tearsheet] [--skip-browser] [--keep] [--workdir DIR]

Builds a synthetic catalog of N one-minute BTCUSDT-PERP bars (``bench_backtest.build_catalog``,
the sample catalog's generator), runs one EMA cross on all of it, and measures on that run:

  (a) NautilusTrader's ``create_tearsheet(engine, output_path=...)``: the same BacktestRunConfig
      the workbench builds, run in this process with ``BacktestNode`` at NautilusTrader's
      defaults (post-run analysis on, no progress actor, engine kept after the run) while the
      workbench's worker runs it too, then the tearsheet written to HTML. Only the tearsheet
      call is timed. It needs plotly, which is not
      a workbench dependency: install it into the venv for the bench (``pip install plotly``);
      without it this part is reported as skipped. The run uses the workbench's fix of
      NautilusTrader's quadratic trade recording (services/backtest/analyzer_fix.py), whose
      observable results are identical, or a run with tens of thousands of trades would take
      most of an hour before the tearsheet starts;
  (b) the workbench's ``export_run_report`` of the same backtest run through the service (worker
      process, artefacts on disk): seconds from the call to the file written, and its size;
  (c) opening the run in ``ResultsViewer`` and ``RunComparison`` on the server side: the
      component and ``pn.panel(component).get_root()`` (first open with an empty results cache,
      then the median of three more, as other sessions would);
  (d) what a browser receives for ``/results?run=ID`` of the served app (``python -m app``):
      every HTTP response body (as sent: compressed if the server compresses) and every
      websocket frame, until the page has drawn its charts and the websocket has been quiet for
      two seconds; then again after opening every tab. Decoded sizes are reported too.

With ``--workdir DIR`` the folder is kept and reused: its catalog if it holds N bars, and a
completed workbench run of the same strategy and parameters if it has one (then only the
NautilusTrader run for the tearsheet is made again; ``--skip-tearsheet`` skips that too).

Targets: (b) faster and smaller than (a), <= 5 MB; (c) <= 1.5 s the first time, <= 0.3 s
again (another session, the process-level cache); (d) <= 5 MB. Results go to a table on
stdout and to JSON in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(BENCH_DIR))

from bench_backtest import BAR_TYPE, build_catalog, raw_config  # noqa: E402

CHROMIUM = os.environ.get("WORKBENCH_BENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
TARGET_FIRST_OPEN_SECONDS = 1.5
TARGET_AGAIN_OPEN_SECONDS = 0.3
TARGET_REPORT_MB = 5.0
TARGET_BROWSER_MB = 5.0
# The page is "done" when the websocket has sent nothing for this long after the charts show.
QUIET_SECONDS = 2.0
TABS = ("Returns", "Metrics", "Trades", "Fills", "Orders", "Configuration", "Charts")


def _mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:.2f}"


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


# -- the run ------------------------------------------------------------------------------------
def workbench_run(wb, run_id: str, t0: float, timeout: float) -> dict:
    """Wait for the run submitted at ``t0`` and load its results."""
    info = wb.backtests.wait(run_id, timeout=timeout)
    if not info.is_final:
        wb.backtests.cancel(run_id)
        raise SystemExit(f"the workbench run did not finish in {timeout:.0f} s")
    if info.status != "Completed":
        raise SystemExit(f"the workbench run ended {info.status}: {info.error}")
    results = wb.backtests.results(run_id)
    return {"run_id": run_id, "seconds": time.perf_counter() - t0,
            "trades": int(len(results.positions)), "fills": int(len(results.fills)),
            "orders": int(len(results.orders)), "equity_rows": int(len(results.equity)),
            "final_balance": results.summary["final_balances"].get("USDT")}


# -- (a) NautilusTrader's tearsheet -------------------------------------------------------------
def plotly_version() -> str | None:
    try:
        import plotly
    except ImportError:
        return None
    return plotly.__version__


def raw_run(wb, spec) -> tuple[dict, object]:
    """The same backtest with BacktestNode in this process, the engine kept for the tearsheet."""
    from nautilus_trader.backtest.config import BacktestRunConfig
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.identifiers import Venue

    from services.backtest import analyzer_fix

    analyzer_fix.install()
    data = json.loads(raw_config(wb.backtests.validate(spec)))
    data["dispose_on_completion"] = False  # keep the engine for the tearsheet
    config = BacktestRunConfig.parse(json.dumps(data).encode())
    t0 = time.perf_counter()
    node = BacktestNode(configs=[config])
    node.run()
    run_seconds = time.perf_counter() - t0
    engine = node.get_engine(config.id)
    cache = engine.cache
    trades = sum(1 for p in cache.positions() + cache.position_snapshots() if p.is_closed)
    balance = engine.portfolio.account(Venue(config.venues[0].name)).balance_total(USDT).as_double()
    return {"run_seconds": run_seconds, "trades": trades, "final_balance": balance}, node


def tearsheet(node, out: Path) -> dict:
    """Time ``create_tearsheet`` on the engine of ``node`` (after its run)."""
    from nautilus_trader.analysis.tearsheet import create_tearsheet

    engine = node.get_engines()[0]
    t0 = time.perf_counter()
    create_tearsheet(engine, output_path=str(out))
    seconds = time.perf_counter() - t0
    node.dispose()
    return {"status": "ok", "seconds": seconds, "bytes": out.stat().st_size, "path": str(out),
            "plotly": plotly_version(),
            "note": "plotly installed into the venv for this benchmark only (not a workbench "
                    "dependency); the run used the workbench's analyzer_fix"}


# -- (b) the workbench's report -----------------------------------------------------------------
def workbench_report(wb, run_id: str, out: Path) -> dict:
    import base64
    import gzip
    import re

    from components.report import export_run_report

    t0 = time.perf_counter()
    export_run_report(wb, run_id, out)
    seconds = time.perf_counter() - t0
    text = out.read_text(encoding="utf-8")
    payload = re.search(r'id="trades" data-payload="([^"]*)"', text).group(1)
    rows = json.loads(gzip.decompress(base64.b64decode(payload)))["rows"]
    return {"status": "ok", "seconds": seconds, "bytes": out.stat().st_size, "path": str(out),
            "trades_in_report": rows}


# -- (c) ResultsViewer and Compare on the server ------------------------------------------------
def viewer_open(wb, run_id: str, partner_id: str, repeats: int = 3) -> dict:
    """Server seconds to build and render the Results and Compare pages of the run: first in a
    process that has not loaded it (an empty results cache), then again as another session
    would (a new component; the process-level cache holds the loaded results)."""
    import panel as pn

    from components import ResultsViewer, RunComparison
    from services.backtest.results import ResultsStore

    def timed(make) -> float:
        t0 = time.perf_counter()
        component = make()
        root = pn.panel(component).get_root()
        seconds = time.perf_counter() - t0
        assert not component.message, component.message
        del root, component
        return seconds

    wb.backtests.store = ResultsStore()  # as in a server that has not opened the run yet
    viewer = [timed(lambda: ResultsViewer(workbench=wb, run_id=run_id))
              for _ in range(1 + repeats)]
    wb.backtests.store = ResultsStore()
    compare = [timed(lambda: RunComparison(workbench=wb, run_ids=[run_id, partner_id]))
               for _ in range(1 + repeats)]
    return {"first_seconds": viewer[0], "again_seconds": statistics.median(viewer[1:]),
            "all_seconds": viewer, "compare_first_seconds": compare[0],
            "compare_again_seconds": statistics.median(compare[1:]), "compare_all_seconds": compare}


# -- (d) what the browser receives --------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ADMIN_PASSWORD = "bench-admin-password"


def _serve(state: Path, catalog: Path, port: int, log: Path) -> subprocess.Popen:
    """The served app; its admin (created on its first start) has ADMIN_PASSWORD."""
    password_file = state.parent / "bench-admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--state-dir", str(state),
             "--catalog", str(catalog), "--admin-password-file", str(password_file)],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    process.terminate()
    raise SystemExit(f"the app did not answer on port {port} in 120 s; see {log}")


class Traffic:
    """Bytes the page received: HTTP bodies (decoded and on the wire) and websocket frames."""

    def __init__(self) -> None:
        self.http_decoded = self.http_wire = self.ws_in = self.ws_out = 0
        self.static_decoded = 0
        self.responses = self.frames = 0
        self.last_frame = time.monotonic()
        self.largest: list[tuple[int, str]] = []

    def on_response(self, response) -> None:
        try:
            body = len(response.body())
        except Exception:  # redirects and aborted requests have no body
            body = 0
        try:
            wire = response.request.sizes()["responseBodySize"]
        except Exception:
            wire = body
        self.responses += 1
        self.http_decoded += body
        self.http_wire += max(wire, 0)
        if "/static/" in response.url:
            self.static_decoded += body
        self.largest.append((body, response.url.split("?")[0][-90:]))

    def on_websocket(self, ws) -> None:
        def received(payload) -> None:
            self.frames += 1
            self.ws_in += len(payload) if isinstance(payload, bytes) else len(payload.encode())
            self.last_frame = time.monotonic()

        def sent(payload) -> None:
            self.ws_out += len(payload) if isinstance(payload, bytes) else len(payload.encode())

        ws.on("framereceived", received)
        ws.on("framesent", sent)

    def snapshot(self) -> dict:
        return {"http_bytes_decoded": self.http_decoded, "http_bytes_on_wire": self.http_wire,
                "static_assets_bytes_decoded": self.static_decoded,
                "websocket_bytes_received": self.ws_in, "websocket_bytes_sent": self.ws_out,
                "responses": self.responses, "websocket_frames": self.frames,
                "total_bytes_received": self.http_wire + self.ws_in,
                "total_bytes_decoded": self.http_decoded + self.ws_in}


def _settle(page, traffic: Traffic, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() - traffic.last_frame < QUIET_SECONDS and time.monotonic() < deadline:
        page.wait_for_timeout(250)


def sign_in(context, url: str) -> None:
    """Sign a browser context in as the served app's admin (its cookie jar keeps the session)."""
    origin = "/".join(url.split("/")[:3])
    response = context.request.post(f"{origin}/login", form={
        "username": "admin", "password": ADMIN_PASSWORD, "next": "/"}, max_redirects=0)
    if response.status != 303:
        raise SystemExit(f"signing in to {origin} failed ({response.status}); was the state "
                         "folder first served with another admin password?")


def browser_payload(url: str, heading: str) -> dict:
    import re

    from playwright.sync_api import expect, sync_playwright

    traffic = Traffic()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1600})
        sign_in(context, url)
        page = context.new_page()
        page.on("response", traffic.on_response)
        page.on("websocket", traffic.on_websocket)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(url, timeout=300_000)
        expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=300_000)
        expect(page.locator("canvas").first).to_be_visible(timeout=300_000)
        ready = time.perf_counter() - t0
        _settle(page, traffic)
        initial = traffic.snapshot()
        for tab in TABS:
            # The tab headers (a card is also labelled "Trades").
            page.locator(".bk-tab", has_text=re.compile(f"^{tab}$")).click()
            _settle(page, traffic)
            if tab == "Trades":
                side = page.locator("[tabulator-field=side]", has_text=re.compile("^(LONG|SHORT)$"))
                expect(side.first).to_be_visible(timeout=120_000)
        every_tab = traffic.snapshot()
        browser.close()
    largest = sorted(traffic.largest, reverse=True)[:6]
    return {"page_ready_seconds": ready, "initial": initial, "after_every_tab": every_tab,
            "largest_responses": [{"bytes": b, "url": u} for b, u in largest],
            "console_errors": errors}


def _catalog(workdir: Path, bars: int) -> None:
    """The bench catalog of ``bars`` bars in ``workdir``, built unless an earlier run left it."""
    marker = workdir / "catalog" / ".bench-bars"
    if marker.exists() and marker.read_text() == str(bars):
        print(f"catalog: reusing {bars:,} bars in {workdir}", flush=True)
        return
    shutil.rmtree(workdir / "catalog", ignore_errors=True)
    t0 = time.perf_counter()
    first, last = build_catalog(workdir / "catalog", bars)
    marker.write_text(str(bars))
    print(f"catalog: {bars:,} bars {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} "
          f"in {time.perf_counter() - t0:.1f} s ({workdir})", flush=True)


def _completed_run(wb, parameters: dict) -> str | None:
    """A completed bench run with these parameters in the workbench's state, if there is one."""
    # Every bench of responsiveness adds a 1,000-run sweep: look further back than the default.
    for info in wb.backtests.list_runs(limit=1_000_000):
        if (info.status == "Completed" and info.label == "bench report"
                and info.parameters == parameters):
            return info.run_id
    return None


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="1-minute bars (default 1M)")
    parser.add_argument("--fast", type=int, default=10, help="fast EMA period (default 10)")
    parser.add_argument("--slow", type=int, default=20, help="slow EMA period (default 20)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the run may take")
    parser.add_argument("--port", type=int, default=None,
                        help="port of the served app (default: a free one)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--skip-tearsheet", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder to keep and reuse (catalog and a completed matching run)")
    args = parser.parse_args(argv)
    out = args.out or (BENCH_DIR / "results"
                       / f"bench_report-{args.bars}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")

    import holoviews as hv
    import panel as pn

    from services.backtest.spec import BacktestSpec
    from services.workbench import Workbench

    pn.extension("tabulator")
    hv.extension("bokeh", logo=False)
    if args.workdir is not None:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        args.keep = True
    else:
        workdir = Path(tempfile.mkdtemp(prefix="nwb-bench-report-"))
    report: dict = {"created": datetime.now(UTC).isoformat(), "bars": args.bars,
                    "variant": f"{args.fast}/{args.slow}", "workdir": str(workdir)}
    server = None
    try:
        _catalog(workdir, args.bars)
        wb = Workbench.open(state_dir=workdir / "state", catalog=str(workdir / "catalog"),
                            scheduler=True)
        parameters = {"fast_ema_period": args.fast, "slow_ema_period": args.slow}
        spec = BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, label="bench report",
                            parameters=parameters)

        # The workbench's worker and NautilusTrader in this process run the backtest at once.
        t0 = time.perf_counter()
        run_id = reused = _completed_run(wb, parameters)
        if run_id is None:
            print("workbench run (worker process) ...", flush=True)
            run_id = wb.backtests.submit(spec)
        else:
            print(f"workbench run: reusing {run_id} from {workdir}", flush=True)
        node = None
        if args.skip_tearsheet:
            report["tearsheet"] = {"status": "skipped", "reason": "--skip-tearsheet"}
        elif plotly_version() is None:
            report["tearsheet"] = {"status": "skipped",
                                   "reason": "plotly is not installed (pip install plotly)"}
        else:
            print("NautilusTrader run in this process, for the tearsheet ...", flush=True)
            report["raw_run"], node = raw_run(wb, spec)
            print(f"  {report['raw_run']['trades']:,} trades in "
                  f"{report['raw_run']['run_seconds']:.1f} s", flush=True)
        run = report["run"] = workbench_run(wb, run_id, t0, args.timeout)
        if reused:
            run["seconds"], run["reused"] = None, True
        print(f"  workbench {run['run_id']}: {run['trades']:,} trades, {run['fills']:,} fills"
              + ("" if reused else f" in {run['seconds']:.1f} s"), flush=True)

        if node is not None:
            print("(a) NautilusTrader create_tearsheet ...", flush=True)
            t = report["tearsheet"] = tearsheet(node, workdir / "tearsheet.html")
            print(f"  {t['seconds']:.2f} s, {_mb(t['bytes'])} MB; {t['note']}", flush=True)
            node = None

        print("(b) workbench report ...", flush=True)
        ours = workbench_report(wb, run["run_id"], workdir / "report.html")
        report["workbench_report"] = ours
        print(f"  {ours['seconds']:.2f} s, {_mb(ours['bytes'])} MB, "
              f"{ours['trades_in_report']:,} trades in the file", flush=True)

        print("(c) ResultsViewer and RunComparison open ...", flush=True)
        # Compare needs a second run: a day of the same data is enough.
        partner = wb.backtests.wait(wb.backtests.submit(BacktestSpec(
            strategy="ema_cross", bar_type=BAR_TYPE, label="bench compare partner",
            parameters=parameters, end="2020-01-02")), timeout=600)
        viewer = report["viewer_open"] = viewer_open(wb, run["run_id"], partner.run_id)
        print(f"  results first {viewer['first_seconds']:.2f} s, again "
              f"{viewer['again_seconds']:.2f} s; compare first "
              f"{viewer['compare_first_seconds']:.2f} s, again "
              f"{viewer['compare_again_seconds']:.2f} s", flush=True)

        if args.skip_browser:
            report["browser"] = {"status": "skipped"}
        else:
            print("(d) browser payload ...", flush=True)
            port = args.port or _free_port()
            server = _serve(workdir / "state", workdir / "catalog", port, workdir / "server.log")
            heading = f"ema_cross on {BAR_TYPE}"
            report["browser"] = browser_payload(
                f"http://127.0.0.1:{port}/results?run={run['run_id']}", heading)
            b = report["browser"]
            print(f"  ready in {b['page_ready_seconds']:.1f} s; initial "
                  f"{_mb(b['initial']['total_bytes_received'])} MB, after every tab "
                  f"{_mb(b['after_every_tab']['total_bytes_received'])} MB", flush=True)
            _stop(server)
            server = None

        wb.database.dispose()
    finally:
        if server is not None:
            _stop(server)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    _print_table(report)
    import nautilus_trader

    report["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                         "load_average_at_end": os.getloadavg(),
                         "nautilus_trader": nautilus_trader.__version__,
                         "panel": pn.__version__, "holoviews": hv.__version__}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {out}")
    return 0


def _print_table(report: dict) -> None:
    run, ours, tear = report["run"], report["workbench_report"], report["tearsheet"]
    viewer, browser = report["viewer_open"], report["browser"]
    ok = tear.get("status") == "ok"
    rows = [
        ("(a) create_tearsheet", _s(tear.get("seconds")), _mb(tear.get("bytes")), "", ""),
        ("(b) workbench report", _s(ours["seconds"]), _mb(ours["bytes"]),
         "yes" if ok and ours["seconds"] < tear["seconds"] else ("n/a" if not ok else "NO"),
         "yes" if ok and ours["bytes"] < tear["bytes"] else ("n/a" if not ok else "NO")),
    ]
    print(f"\n{report['bars']:,} bars, EMA {report['variant']}: {run['trades']:,} trades, "
          f"{run['fills']:,} fills; trades in the report: {ours['trades_in_report']:,}")
    if "raw_run" in report:
        raw = report["raw_run"]
        same = (raw["trades"] == run["trades"]
                and abs(raw["final_balance"] - run["final_balance"]) < 1e-6)
        print(f"NautilusTrader in this process: {raw['trades']:,} trades "
              f"({'same outcome' if same else 'DIFFERENT outcome'} as the workbench run)")
    header = f"{'':<24} {'seconds':>8} {'MB':>7}  {'faster':>6} {'smaller':>7}"
    print(header)
    print("-" * len(header))
    for name, sec, mb, faster, smaller in rows:
        print(f"{name:<24} {sec:>8} {mb:>7}  {faster:>6} {smaller:>7}")
    print()
    size = "ok" if ours["bytes"] <= TARGET_REPORT_MB * 1e6 else "OVER"
    print(f"(b) report size {_mb(ours['bytes'])} MB (target <= {TARGET_REPORT_MB:.0f} MB: {size})")
    for page, first, again in (("ResultsViewer", "first_seconds", "again_seconds"),
                               ("RunComparison", "compare_first_seconds", "compare_again_seconds")):
        verdict = ("ok" if viewer[first] <= TARGET_FIRST_OPEN_SECONDS
                   and viewer[again] <= TARGET_AGAIN_OPEN_SECONDS else "OVER")
        print(f"(c) {page} open: first {viewer[first]:.2f} s (target <= "
              f"{TARGET_FIRST_OPEN_SECONDS} s), again {viewer[again]:.2f} s (target <= "
              f"{TARGET_AGAIN_OPEN_SECONDS} s): {verdict}")
    if browser.get("status") == "skipped":
        print("(d) browser payload: skipped")
        return
    for when in ("initial", "after_every_tab"):
        b = browser[when]
        verdict = "ok" if b["total_bytes_received"] <= TARGET_BROWSER_MB * 1e6 else "OVER"
        print(f"(d) browser, {when.replace('_', ' ')}: {_mb(b['total_bytes_received'])} MB "
              "received "
              f"(HTTP {_mb(b['http_bytes_decoded'])} MB decoded / "
              f"{_mb(b['http_bytes_on_wire'])} MB on the wire, of which static JS/CSS "
              f"{_mb(b['static_assets_bytes_decoded'])} MB; websocket "
              f"{_mb(b['websocket_bytes_received'])} MB in {b['websocket_frames']} frames)"
              f" target <= {TARGET_BROWSER_MB:.0f} MB: {verdict}")
    print(f"    page ready in {browser['page_ready_seconds']:.1f} s; console errors: "
          f"{len(browser['console_errors'])}")


if __name__ == "__main__":
    sys.exit(main())
