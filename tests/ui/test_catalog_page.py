"""A user uploads a CSV on the catalog page, sees it in the inventory and checks its quality.

Real server over an empty temporary catalog (``empty_catalog_server``), real Chromium.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import ARTIFACTS, VIEWPORT, assert_no_traceback, sign_in

pytestmark = pytest.mark.ui

SERIES = "ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
TIMEOUT_MS = 60_000


def _artifact(name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


@pytest.fixture
def csv_upload(tmp_path):
    """Four hours of one-minute bars with the hour 01:00-02:00 missing."""
    index = pd.date_range("2024-03-04 00:01", periods=240, freq="1min").delete(range(60, 120))
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 3400.5,
                          "high": 3401.0, "low": 3399.5, "close": 3400.75, "volume": 1.25})
    path = tmp_path / "ethusdt-1m.csv"
    frame.to_csv(path, index=False)
    return path


def test_upload_a_csv_see_it_in_the_inventory_and_check_it(browser, empty_catalog_server,
                                                           csv_upload):
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, empty_catalog_server)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        # The empty catalog says so.
        page.goto(empty_catalog_server.url + "/catalog")
        expect(page.get_by_role("heading", name="Data catalog")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_text("holds no data yet")).to_be_visible(timeout=TIMEOUT_MS)

        # Upload through the browser's file input, describe, import.
        page.locator(".bk-tab", has_text="Import").click()
        page.locator("input[type=file]").set_input_files(str(csv_upload))
        expect(page.get_by_text(re.compile(r"Uploaded ethusdt-1m\.csv"))).to_be_visible(timeout=TIMEOUT_MS)
        instrument = page.locator("input[placeholder='BTCUSDT-PERP.BINANCE']")
        instrument.fill("ETHUSDT-PERP.BINANCE")
        instrument.press("Enter")
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_text(re.compile("new crypto-perp instrument"))).to_be_visible(timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_text(re.compile(r"Imported 180 rows into"))).to_be_visible(timeout=TIMEOUT_MS)

        # The inventory lists it (grouped by venue and instrument) with its coverage.
        expect(page.get_by_text(SERIES, exact=True).first).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_text("2024-03-04 00:01").first).to_be_visible()

        # Its quality check finds the missing hour, against the crypto calendar.
        page.locator(".bk-tab", has_text="Quality").click()
        page.get_by_role("button", name="Run quality check").click()
        expect(page.get_by_text(re.compile(r"against the 24/7 calendar: 180 rows; 1 gaps \(60 missing\)"))
               ).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_text("2024-03-04 01:00").first).to_be_visible()

        assert_no_traceback(page)
        assert not problems, problems
    finally:
        context.close()


KEY_COLUMNS = ("Series", "Data", "Source", "First (UTC)", "Last (UTC)", "Holes", "Rows")


@pytest.fixture
def holey_upload(tmp_path):
    """1-minute bars of a crypto perpetual, 00:01-02:00 and 07:01-08:00: the bars that would
    cover 02:00-07:00 are missing, 5 hours of an always-open market."""
    index = pd.date_range("2024-03-05 00:01", "2024-03-05 08:00", freq="1min")
    index = index[(index <= "2024-03-05 02:00") | (index >= "2024-03-05 07:01")]
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 140.5,
                          "high": 141.0, "low": 140.0, "close": 140.75, "volume": 3.5})
    path = tmp_path / "solusdt-1m.csv"
    frame.to_csv(path, index=False)
    return path


def test_an_imported_series_with_a_hole_shows_it_and_is_not_called_synthetic(
        browser, empty_catalog_server, holey_upload):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    sign_in(context, empty_catalog_server)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        # Arrange: import the file through the wizard.
        page.goto(empty_catalog_server.url + "/catalog")
        expect(page.get_by_role("heading", name="Data catalog")).to_be_visible(timeout=TIMEOUT_MS)
        page.locator(".bk-tab", has_text="Import").click()
        page.locator("input[type=file]").set_input_files(str(holey_upload))
        expect(page.get_by_text(re.compile(r"Uploaded solusdt-1m\.csv"))).to_be_visible(
            timeout=TIMEOUT_MS)
        instrument = page.locator("input[placeholder='BTCUSDT-PERP.BINANCE']")
        instrument.fill("SOLUSDT-PERP.BINANCE")
        instrument.press("Enter")

        # Act
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_text(re.compile(r"Imported 180 rows into"))).to_be_visible(
            timeout=TIMEOUT_MS)

        # Assert: its row says imported with one 5-hour hole; the timeline marks the hole.
        row = page.locator(".tabulator-row", has=page.locator(
            "[tabulator-field=Series]", has_text="SOLUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"))
        expect(row.locator("[tabulator-field=Source]")).to_have_text("imported", timeout=TIMEOUT_MS)
        expect(row.locator("[tabulator-field=Holes]")).to_have_text("1 (5h00m)")
        expect(row.locator("[tabulator-field=Rows]")).to_have_text("180")
        expect(page.locator(".cov-track .cov-hole")).to_have_count(1)
        expect(page.locator(".cov-track .cov-bar")).to_have_count(3)  # ETH's one, SOL's two
        expect(page.get_by_text(re.compile("Synthetic sample"))).to_have_count(0)
        page.screenshot(path=str(_artifact("catalog-imported-with-a-hole")))
        assert_no_traceback(page)
        assert not problems, problems
    finally:
        context.close()


def test_the_inventory_s_key_columns_fit_a_1440_px_screen(page, server, screenshot):
    # Arrange
    page.set_viewport_size({"width": 1440, "height": 900})

    # Act
    page.goto(server.url + "/catalog")
    expect(page.get_by_role("heading", name="Data catalog")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("[tabulator-field=Series]").nth(1)).to_be_visible(timeout=TIMEOUT_MS)

    # Assert: every key column's header lies inside the viewport, no horizontal scroll.
    for title in KEY_COLUMNS:
        header = page.locator(".tabulator-col", has=page.locator(
            ".tabulator-col-title", has_text=re.compile(f"^{re.escape(title)}$")))
        expect(header).to_be_visible()
        box = header.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 1440, (title, box)
    expect(page.get_by_text("synthetic sample", exact=True).first).to_be_visible()
    screenshot("catalog-1440")
