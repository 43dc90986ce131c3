"""A user starts a paper engine in the browser, watches it run and kills it with the emergency stop.

Needs Chromium, a Docker daemon and the engine image (skipped without them on a developer
machine, failing under CI). The module serves its own app (overriding conftest's ``server``):
the engine container's unprivileged user must be able to read the catalog, which pytest's
private temporary folders do not allow. Every container started is killed and removed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import docker_with_engine_image
from tests.ui.conftest import (
    VIEWER,
    VIEWER_PASSWORD,
    VIEWPORT,
    Server,
    _stop,
    sign_in,
    start_server,
)

pytestmark = [pytest.mark.ui, pytest.mark.docker]

# A paper engine is Running within seconds; the rest is a busy machine.
ENGINE_TIMEOUT_MS = 90_000
ANSWER_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server(chromium_executable, tmp_path_factory) -> Server:
    """``python -m app`` over a sample catalog the engine container can read."""
    from services.catalog.sample import generate_sample_catalog

    docker_with_engine_image()
    folder = Path(tempfile.mkdtemp(prefix="workbench-ui-engines-"))
    folder.chmod(0o755)
    catalog = folder / "catalog"
    generate_sample_catalog(catalog)
    home = tmp_path_factory.mktemp("ui-engines-server")
    state_dir = home / "state"
    srv = start_server(state_dir, catalog, home / "server.log")
    yield srv
    try:
        _remove_engines(state_dir)
    finally:
        _stop(srv.process)
        shutil.rmtree(folder, ignore_errors=True)


def _remove_engines(state_dir: Path) -> None:
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir)
    try:
        wb.engines.emergency_stop_all()
        wb.engines.cleanup()
    finally:
        wb.database.dispose()


def _engines(state_dir: Path) -> list:
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir)
    try:
        return wb.engines.list_sessions()
    finally:
        wb.database.dispose()


def _type(page: Page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")  # numeric inputs apply their value on change
    expect(field).to_have_value(value)


def test_emergency_stop_is_in_every_pages_header(open_page):
    for path in ("/", "/backtest", "/engines"):
        page = open_page(path)
        expect(page.get_by_role("button", name="EMERGENCY STOP", exact=True)).to_be_visible()


# Counts the websocket messages a page receives (installed before the page's own scripts).
_COUNT_RECEIVED_JS = """(() => {
  window.__received = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (!this.__counted) {
      this.__counted = true;
      this.addEventListener('message', () => { window.__received += 1; });
    }
    return send.call(this, data);
  };
})();"""


def _quiet_count(page: Page) -> int:
    """The page's received-message count once a second passes without a new one."""
    count = page.evaluate("window.__received")
    for _ in range(30):
        page.wait_for_timeout(1000)
        now = page.evaluate("window.__received")
        if now == count:
            return count
        count = now
    raise AssertionError("the page kept receiving messages for 30 s")


def test_one_users_clicks_send_nothing_to_another_users_page(browser, server, open_page):
    # Arrange: a viewer's Account page (it follows no live state), counting what it receives
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server, VIEWER, VIEWER_PASSWORD)
    other = context.new_page()
    other.add_init_script(_COUNT_RECEIVED_JS)
    try:
        other.goto(server.url + "/account")
        expect(other.get_by_role("heading", name="Your account")).to_be_visible(timeout=30_000)
        mine = open_page("/account")
        before = _quiet_count(other)

        # Act: the admin arms and cancels the emergency stop three times
        for _ in range(3):
            mine.get_by_role("button", name="EMERGENCY STOP", exact=True).click()
            expect(mine.get_by_role("button", name="Kill all engines now")).to_be_visible(
                timeout=ANSWER_TIMEOUT_MS)
            mine.get_by_role("button", name="Cancel", exact=True).click()
            expect(mine.get_by_role("button", name="Kill all engines now")).to_be_hidden(
                timeout=ANSWER_TIMEOUT_MS)

        # Assert: nothing reached the viewer's page (Panel's process-wide busy spinner sent
        # every open page two messages per click, each under that page's lock)
        assert _quiet_count(other) == before
    finally:
        context.close()


def test_start_a_paper_engine_watch_it_and_kill_it(open_page, server, screenshot):
    page = open_page("/engines")
    expect(page.get_by_role("heading", name="Trading engines")).to_be_visible()

    # Arrange: a fast replay and short EMAs, so fills come quickly
    expect(page.get_by_label("Template")).to_have_value("paper_trading")
    expect(page.get_by_text("Mode: PAPER").first).to_be_visible()
    page.get_by_label("Engine name").fill("ui-paper")
    page.get_by_label("Engine name").press("Tab")
    _type(page, "Replay speed (x real time)", "600")
    _type(page, "Fast EMA period (bars)", "5")
    _type(page, "Slow EMA period (bars)", "12")

    # Act: start asks for a confirmation first
    page.get_by_role("button", name="Start engine…").click()
    confirm = page.get_by_role("button", name="Confirm start")
    expect(confirm).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"Start paper engine ui-paper"))).to_be_visible()
    assert _engines(server.state_dir) == [], "nothing may start before the confirmation"
    confirm.click()

    # Assert: it runs, trades, and its resources are plotted
    header = page.locator(".engine-header")
    expect(header).to_contain_text("ui-paper", timeout=ANSWER_TIMEOUT_MS)
    expect(header).to_contain_text("Running", timeout=ENGINE_TIMEOUT_MS)
    expect(page.get_by_text("EMACross-000 (RUNNING)")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    (engine,) = _engines(server.state_dir)
    assert (engine.name, engine.state, engine.actor) == ("ui-paper", "Running", "admin")
    assert engine.parameters["replay_speed"] == 600
    page.locator(".engine-detail").get_by_text("Resources", exact=True).click()
    plots = page.locator(".resource-plots canvas")
    expect(plots.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    box = plots.first.bounding_box()
    assert box["width"] > 200 and box["height"] > 150
    page.locator(".engine-detail").get_by_text("Log", exact=True).click()
    expect(page.locator(".engine-log")).to_contain_text("EMACross", timeout=ENGINE_TIMEOUT_MS)
    page.wait_for_timeout(6000)  # one monitor sample (every 5 s) reaches the plots
    page.get_by_role("heading", name="Trading engines").scroll_into_view_if_needed()
    screenshot("engines-running")

    # Act: the header's emergency stop, with its confirmation
    page.get_by_role("button", name="EMERGENCY STOP", exact=True).click()
    expect(page.get_by_text("Kill 1 active engine(s)?")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    page.get_by_role("button", name="Kill all engines now").click()

    # Assert: reported, and the engine is Stopped (killed)
    report = re.compile(r"Emergency stop: killed 1 engine\(s\): ui-paper")
    expect(page.locator("#header-items").get_by_text(report)).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".notyf__message").get_by_text(report)).to_be_visible()
    expect(header).to_contain_text("Stopped", timeout=ANSWER_TIMEOUT_MS)
    (engine,) = _engines(server.state_dir)
    assert (engine.state, engine.final_state) == ("Stopped", "Killed")
    page.locator(".engine-detail").get_by_text("Audit trail", exact=True).click()
    expect(page.locator(".audit-trail")).to_contain_text("emergency_stop",
                                                          timeout=ANSWER_TIMEOUT_MS)
    screenshot("engines-killed")


def test_an_order_from_the_ticket_fills_and_a_breached_limit_shows_the_red_banner(
        open_page, server, screenshot):
    from services.workbench import Workbench

    # Arrange: a paper engine whose daily-loss limit the first fill's commission breaks
    wb = Workbench.open(state_dir=server.state_dir, catalog=str(server.catalog))
    try:
        info = wb.engines.start("paper_trading", {"replay_speed": 600, "fast_ema_period": 5,
                                                  "slow_ema_period": 12,
                                                  "risk.max_daily_loss": "0.01"},
                                name="ui-ticket")
        assert wb.engines.wait_for(info.session_id, ("Running", "Error"),
                                   timeout=90).state == "Running"
        wb.commands.strategy(info.session_id, "pause", "EMACross-000")  # only our order
    finally:
        wb.database.dispose()
    page = open_page("/engines")
    header = page.locator(".engine-header")
    page.locator(".engine-list").get_by_text("ui-ticket", exact=True).click(timeout=ENGINE_TIMEOUT_MS)
    expect(header).to_contain_text("ui-ticket", timeout=ANSWER_TIMEOUT_MS)
    expect(header).to_contain_text("Running", timeout=ENGINE_TIMEOUT_MS)

    # Act: the ticket asks to confirm with the notional and the position, then sends
    ticket = page.locator(".order-ticket")
    expect(ticket.get_by_label("Instrument")).to_have_value("BTCUSDT-PERP.BINANCE",
                                                            timeout=ANSWER_TIMEOUT_MS)
    ticket.get_by_label("Quantity", exact=True).fill("0.01")
    ticket.get_by_label("Quantity", exact=True).press("Tab")
    ticket.get_by_role("button", name="Review order…").click()
    expect(ticket.get_by_text(re.compile(r"Notional ≈ [0-9,.]+ USDT"))).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS)
    expect(ticket.get_by_text(re.compile(r"position now 0"))).to_be_visible()
    ticket.get_by_role("button", name="Send order").click()

    # Assert: filled, in the blotter, and the engine halted itself on the breach
    expect(ticket.locator(".ticket-message")).to_contain_text("FILLED", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".blotter-orders")).to_contain_text("FILLED", timeout=ANSWER_TIMEOUT_MS)
    page.locator(".engine-detail").get_by_text("Positions", exact=True).click()
    expect(page.locator(".blotter-positions")).to_contain_text("Workbench-MANUAL",
                                                                timeout=ANSWER_TIMEOUT_MS)
    banner = page.locator(".engine-detail .risk-banner").first
    expect(banner).to_contain_text("RISK LIMIT BREACHED", timeout=ANSWER_TIMEOUT_MS)
    expect(banner).to_contain_text("max_daily_loss")
    expect(page.locator(".engine-state")).to_contain_text("HALTED")
    screenshot("engines-order-and-risk-banner")
