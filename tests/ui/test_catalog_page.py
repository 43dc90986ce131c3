"""A user uploads a CSV on the catalog page, sees it in the inventory and checks its quality.

Real server over an empty temporary catalog (``empty_catalog_server``), real Chromium.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import VIEWPORT, assert_no_traceback, sign_in

pytestmark = pytest.mark.ui

SERIES = "ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
TIMEOUT_MS = 60_000


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
