"""A user runs a parameter sweep in the browser, watches it progress, and opens the best run;
the queue page lists the runs with their controls.

Drives the real server (see conftest.py) with Chromium; every page must be free of tracebacks
and browser console errors (checked by the ``page`` fixture at teardown).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import VIEWPORT, choose_strategy

pytestmark = pytest.mark.ui

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
# Four runs over a week of 1-minute bars, two at a time on a busy two-core machine.
SWEEP_TIMEOUT_MS = 240_000


def test_run_a_sweep_watch_it_and_open_the_best_run(open_page, server, screenshot):
    page = open_page("/sweeps")
    before = server.run_ids()

    # Arrange: ema_cross on BTC, fast in {5, 10} x slow in {30, 60}.
    choose_strategy(page, "ema_cross")
    page.get_by_label("Bar type").select_option(BTC_BARS)
    fast, slow = page.get_by_label("Fast EMA period"), page.get_by_label("Slow EMA period")
    expect(fast).to_have_value("5,10,20")  # suggested from the template's default
    fast.fill("5,10")
    fast.press("Enter")
    slow.fill("30,60")
    slow.press("Enter")

    # Act
    page.get_by_role("button", name="Run sweep").click()

    # Assert: submitted, progressing, then completed with a best run.
    expect(page.get_by_text(re.compile(r"Sweep sweep-\S+ submitted: 4 runs"))).to_be_visible(
        timeout=30_000)
    expect(page.get_by_text(re.compile(r"\d/4 done .* running"))).to_be_visible(timeout=60_000)
    screenshot("sweep-running")
    expect(page.get_by_text(re.compile(r"^Completed — ema_cross on"))).to_be_visible(
        timeout=SWEEP_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"4/4 done \(4 completed"))).to_be_visible()
    new_runs = server.run_ids() - before
    assert len(new_runs) == 4, sorted(new_runs)
    # The ranking of all four runs (an earlier one, of three, may still be on display).
    expect(page.get_by_text(re.compile(r"4 trials \(completed runs of 4\)"))).to_be_visible(
        timeout=30_000)
    best = page.get_by_role("link", name="Open the best run")
    expect(best).to_be_visible(timeout=30_000)
    href = best.get_attribute("href")
    run_id = href.split("run=")[1]
    assert run_id in new_runs
    expect(page.get_by_text(re.compile(f"Best by Sharpe: {run_id}"))).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
    screenshot("sweep-completed")
    # The leaderboard's figures that matter fit beside the form at 1440 px (the leaderboard
    # is the first table with these fields on the page).
    for field in ("status", "sharpe", "total_return", "psr"):
        header = page.locator(f".tabulator-col[tabulator-field={field}]").first
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= VIEWPORT["width"], (field, box)

    # Act: open the best run.
    best.click()

    # Assert: the results viewer shows that run.
    expect(page).to_have_url(f"{server.url}/results?run={run_id}")
    expect(page.get_by_role("heading", name=f"ema_cross on {BTC_BARS}")).to_be_visible(
        timeout=30_000)
    expect(page.get_by_text(run_id, exact=True).first).to_be_visible()


def test_runs_page_lists_runs_with_controls(open_page, screenshot):
    page = open_page("/runs")

    expect(page.get_by_role("heading", name="Backtest queue")).to_be_visible()
    for name in ("Pause", "Resume", "Cancel", "Refresh"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    # The run the server failed at start-up is listed with its reason.
    cells = page.locator(".tabulator-cell")
    expect(cells.filter(has_text="failed-before-start").first).to_be_visible(timeout=30_000)
    expect(cells.filter(has_text=re.compile("^Interrupted")).first).to_be_visible()
    screenshot("runs")


def test_sweeps_offer_the_runtimes_that_work_and_explain_the_rest(open_page, screenshot):
    page = open_page("/sweeps")

    # Arrange / Act: the server runs with Docker and the engine image, and no Dask scheduler.
    page.get_by_label("Bar type").select_option(BTC_BARS)

    # Assert: the trade size hint is the default a BTC run uses; dask is explained, not offered.
    expect(page.get_by_label("Trade size")).to_have_attribute(
        "placeholder", re.compile(r"^default 0\.1;"))
    runtime = page.get_by_label("Runtime")
    expect(runtime.locator("option")).to_have_text(["Local worker processes",
                                                    "Docker containers"])
    expect(page.get_by_text(re.compile("No Dask scheduler is configured"))).to_be_visible()
    expect(page.get_by_role("button", name="Build engine image")).to_have_count(0)
    screenshot("sweeps-runtimes")
