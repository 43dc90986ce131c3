"""Benchmark: the header's EMERGENCY STOP answers in <= 200 ms while one browser session opens a
43k-trade run and another submits a 1,000-run sweep (issue 14).

    python bench/bench_responsiveness.py [--workdir DIR] [--bars 1000000] [--port P]

Builds (or reuses, with ``--workdir``) the 1M-bar bench catalog and one completed EMA 10/20 run
on it (~43k trades; see bench_report.py), then serves the app and drives three signed-in
Chromium sessions at once:

- session A opens ``/results?run=ID`` of that run and waits for its charts;
- session B, on ``/sweeps``, submits ema_cross with fast 2..41 x slow 42..66 (1,000 runs) and
  waits for "submitted: 1000 runs";
- session C, on the Overview, presses EMERGENCY STOP again and again and times each answer: from
  the click to its confirmation button on screen (a round trip through the server's event loop),
  then cancels.

The same presses are timed on an idle server first, for reference. Target: every press during
A's and B's work answers in <= 200 ms. Each press is also split in the page: its click's
websocket message out to the first message back is the server's share, the rest the browser's.
On a 2-core machine the browsers share the server's cores; ``--low-priority-browsers`` runs
them at nice 19 to stand for users' own machines. (A plain ``nice chromium`` does not hold as
root: Chromium sets its own threads' priorities, to -8 for the display-critical ones, unless
it lacks CAP_SYS_NICE, which the option drops.) The sweep is cancelled at the end. JSON goes
to bench/results/responsiveness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(BENCH_DIR))

from bench_backtest import BAR_TYPE  # noqa: E402
from bench_report import (  # noqa: E402
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    _catalog,
    _completed_run,
    _free_port,
    _serve,
    _stop,
)

TARGET_MS = 200.0
# By the fields' labels; 40 x 25 = 1,000 runs.
SWEEP = {"Fast EMA period": "2..41:1", "Slow EMA period": "42..66:1"}
SWEEP_RUNS = 1_000


async def _signed_in_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    response = await context.request.post(f"{url}/login", form={
        "username": "admin", "password": ADMIN_PASSWORD, "next": "/"}, max_redirects=0)
    if response.status != 303:
        raise SystemExit(f"signing in failed ({response.status})")
    return await context.new_page()


# Timed inside the page, from the click to the confirmation button being on screen, as the user
# sees it: driving each step through Playwright's actionability checks and polling added ~90 ms
# of its own to every press on an idle server (129 ms against 35 ms measured in the page).
_PRESS_JS = """async () => {
  const visible = (label) => {
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.tagName === 'BUTTON' && el.textContent.trim() === label && el.offsetParent !== null)
          return el;
        if (el.shadowRoot) { const found = walk(el.shadowRoot); if (found) return found; }
      }
      return null;
    };
    return walk(document);
  };
  const until = async (done) => {
    const deadline = performance.now() + 60000;
    while (!done()) {
      if (performance.now() > deadline) throw new Error('no answer in 60 s');
      await new Promise(resolve => setTimeout(resolve, 2));
    }
  };
  await until(() => visible('EMERGENCY STOP'));
  const t0 = performance.now();
  visible('EMERGENCY STOP').click();
  await until(() => visible('Kill all engines now'));
  const took = performance.now() - t0;
  // The server's share: from the click's message leaving to the first message back (frames
  // timed by the page's websocket hooks, see _WEBSOCKET_TIMES_JS).
  const frames = window.__wbFrames.filter(([, t]) => t >= t0);
  const sent = frames.find(([kind]) => kind === 'sent');
  const back = sent && frames.find(([kind, t]) => kind === 'received' && t >= sent[1]);
  await until(() => visible('Cancel'));
  visible('Cancel').click();
  await until(() => !visible('Kill all engines now'));
  window.__wbFrames = [];
  return [took, back ? back[1] - sent[1] : null];
}"""

# Times every websocket frame the page sends and receives, in the page's clock.
_WEBSOCKET_TIMES_JS = """(() => {
  window.__wbFrames = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.__wbFrames.push(['sent', performance.now()]);
    if (!this.__wbTimed) {
      this.__wbTimed = true;
      this.addEventListener(
        'message', () => window.__wbFrames.push(['received', performance.now()]));
    }
    return send.call(this, data);
  };
})();"""


async def _press_emergency_stop(page) -> tuple[float, float | None]:
    """Milliseconds from pressing EMERGENCY STOP to its confirmation showing, and of those the
    server's (the click's message out to the first message back); then cancel."""
    took, server = await page.evaluate(_PRESS_JS)
    return took, server


async def _open_big_run(page, url: str, run_id: str) -> float:
    from playwright.async_api import expect

    t0 = time.perf_counter()
    await page.goto(f"{url}/results?run={run_id}", timeout=300_000)
    await expect(page.get_by_role("heading", name=f"ema_cross on {BAR_TYPE}")).to_be_visible(
        timeout=300_000)
    await expect(page.locator("canvas").first).to_be_visible(timeout=300_000)
    # That run itself, not "the latest completed run instead" (which another heading matches).
    await expect(page.get_by_text("There is no run")).to_have_count(0)
    return time.perf_counter() - t0


async def _submit_sweep(page, url: str) -> float:
    import re

    from playwright.async_api import expect

    await page.goto(f"{url}/sweeps", timeout=120_000)
    menu = page.get_by_label("Strategy", exact=True)  # options read "EMA cross (ema_cross)"
    await menu.select_option(label=await menu.locator("option", has_text="(ema_cross)")
                             .text_content())
    await page.get_by_label("Bar type").select_option(BAR_TYPE)
    for name, values in SWEEP.items():
        field = page.get_by_label(name)
        await field.fill(values)
        await field.press("Enter")
    t0 = time.perf_counter()
    await page.get_by_role("button", name="Run sweep").click()
    await expect(page.get_by_text(re.compile(rf"submitted: {SWEEP_RUNS:,} runs|submitted: "
                                             rf"{SWEEP_RUNS} runs"))).to_be_visible(
        timeout=300_000)
    return time.perf_counter() - t0


def _low_priority_launcher(workdir: Path) -> str:
    """A launcher that runs Chromium at nice 19 and keeps it there."""
    launcher = workdir / "chromium-nice-19"
    root = os.geteuid() == 0 and shutil.which("setpriv")
    keep = "setpriv --bounding-set -sys_nice " if root else ""
    launcher.write_text(f'#!/bin/sh\nexec {keep}nice -n 19 {CHROMIUM} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


async def _measure(url: str, run_id: str, idle_presses: int, chromium: str) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        a, b, c = [await _signed_in_page(browser, url) for _ in range(3)]
        await c.add_init_script(_WEBSOCKET_TIMES_JS)
        await c.goto(f"{url}/", timeout=120_000)
        await c.get_by_role("button", name="EMERGENCY STOP").wait_for(timeout=120_000)
        idle = [(await _press_emergency_stop(c))[0] for _ in range(idle_presses)]

        work = [asyncio.create_task(_open_big_run(a, url, run_id)),
                asyncio.create_task(_submit_sweep(b, url))]
        loaded: list[float] = []
        server: list[float | None] = []
        while not all(task.done() for task in work):
            took, served = await _press_emergency_stop(c)
            loaded.append(took)
            server.append(served)
        results_open_s, sweep_submit_s = [task.result() for task in work]
        await browser.close()
    return {"idle_ms": idle, "under_load_ms": loaded, "under_load_server_ms": server,
            "results_open_s": results_open_s, "sweep_submit_s": sweep_submit_s}


def _cancel_sweep(state: Path, catalog: Path) -> None:
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state, catalog=str(catalog))
    for sweep in wb.backtests.list_sweeps(limit=5):
        if not sweep.is_final:
            wb.backtests.stop_sweep(sweep.sweep_id)
    wb.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder to keep and reuse (catalog and the completed run)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--idle-presses", type=int, default=5)
    parser.add_argument("--low-priority-browsers", action="store_true",
                        help="run the three browsers at nice 19 (users' browsers do not share "
                             "the server's cores)")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="nwb-bench-responsive-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    from services.backtest.spec import BacktestSpec
    from services.workbench import Workbench

    _catalog(workdir, args.bars)
    parameters = {"fast_ema_period": 10, "slow_ema_period": 20}
    # No scheduler of its own: one would also dispatch a previous bench's leftover sweep runs.
    wb = Workbench.open(state_dir=workdir / "state", catalog=str(workdir / "catalog"))
    run_id = _completed_run(wb, parameters)
    if run_id is None:
        print("the 43k-trade run (a few minutes) ...", flush=True)
        run_id = wb.backtests.submit(BacktestSpec(
            strategy="ema_cross", bar_type=BAR_TYPE, label="bench report", parameters=parameters))
        scheduler = wb.backtests.scheduled_here([run_id])
        info = wb.backtests.wait(run_id, timeout=3600)
        if scheduler is not None:
            scheduler.stop(wait_for_runs=True)
        if info.status != "Completed":
            raise SystemExit(f"the bench run ended {info.status}: {info.error}")
    trades = wb.backtests.get(run_id).num_trades
    wb.close()  # the server is the scheduler from here on

    port = args.port or _free_port()
    server = _serve(workdir / "state", workdir / "catalog", port, workdir / "server.log")
    try:
        chromium = _low_priority_launcher(workdir) if args.low_priority_browsers else CHROMIUM
        measured = asyncio.run(_measure(f"http://127.0.0.1:{port}", run_id, args.idle_presses,
                                        chromium))
    finally:
        _cancel_sweep(workdir / "state", workdir / "catalog")
        _stop(server)
    loaded = measured["under_load_ms"]
    result = {
        "bars": args.bars, "trades": trades, "sweep_runs": SWEEP_RUNS,
        "idle_median_ms": statistics.median(measured["idle_ms"]),
        "under_load_presses": len(loaded),
        "under_load_median_ms": statistics.median(loaded) if loaded else None,
        "under_load_max_ms": max(loaded) if loaded else None,
        # The slowest press, split: the server's round trip and the rest (the browser's).
        "slowest_press_server_ms": measured["under_load_server_ms"][loaded.index(max(loaded))]
        if loaded else None,
        "results_open_s": measured["results_open_s"],
        "sweep_submit_s": measured["sweep_submit_s"],
        "browsers": "nice 19" if args.low_priority_browsers else "normal priority",
        "raw": measured, "target_ms": TARGET_MS, "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    result["passed"] = bool(loaded) and max(loaded) <= TARGET_MS
    out = BENCH_DIR / "results" / "responsiveness.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
