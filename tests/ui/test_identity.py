"""Signing in and out in Chromium, what a viewer may not do, and requests from another site.

The ``server`` fixture's state folder has the admin (ADMIN_PASSWORD) and a viewer (VIEWER)."""

from __future__ import annotations

import http.server
import re
import threading

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import (
    ADMIN_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    VIEWPORT,
    assert_no_traceback,
    sign_in,
)

pytestmark = pytest.mark.ui

TIMEOUT_MS = 30_000


@pytest.fixture
def anonymous(browser):
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert errors == []


def test_sign_in_see_who_you_are_and_sign_out(anonymous, server, screenshot):
    page = anonymous

    # A page without a session goes to the sign-in form, which keeps where you were going.
    page.goto(server.url + "/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=/runs$"))
    page.fill("#username", "admin")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")

    # Signed in: back on /runs, the user and roles in the header.
    expect(page).to_have_url(re.compile(r"/runs$"))
    header = page.locator(".workbench-user")
    expect(header).to_contain_text("admin", timeout=TIMEOUT_MS)
    expect(header).to_contain_text("researcher")
    assert_no_traceback(page)
    screenshot("signed-in")

    # Signed out: the session no longer opens pages.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.get_by_text("You signed out.")).to_be_visible()
    page.goto(server.url + "/backtest")
    expect(page).to_have_url(re.compile(r"/login\?next=/backtest$"))


def test_a_viewer_sees_control_buttons_disabled_with_the_reason(browser, server, screenshot):
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server, VIEWER, VIEWER_PASSWORD)
    page = context.new_page()
    try:
        page.goto(server.url + "/backtest")
        run = page.get_by_role("button", name="Run backtest")
        expect(run).to_be_disabled(timeout=TIMEOUT_MS)
        expect(page.get_by_text(f"{VIEWER} may not run backtests: the researcher role is "
                                "needed.")).to_be_visible()
        expect(page.locator(".workbench-user")).to_contain_text("(viewer)")
        users = page.locator(".nav-link.disabled", has_text="Users")
        expect(users).to_have_attribute("title", f"{VIEWER} may not manage users: the admin "
                                                 "role is needed.")
        screenshot("viewer-backtest")
    finally:
        context.close()


class _EvilSite(http.server.BaseHTTPRequestHandler):
    """A page on another origin that tries to kill every engine with the user's cookie."""

    target = ""

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = f"""<!DOCTYPE html><html><body><p id="out">…</p><script>
        fetch("{self.target}/api/v1/nautilus/engine/emergency-stop", {{method: "POST",
              credentials: "include", headers: {{"Content-Type": "text/plain"}},
              body: '{{"all": true}}'}})
          .then(r => document.getElementById("out").textContent = "status " + r.status)
          .catch(e => document.getElementById("out").textContent = "blocked " + e);
        </script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_another_site_cannot_use_the_session_cookie(browser, server):
    # Arrange: a signed-in browser, and a page on another origin
    evil = http.server.HTTPServer(("127.0.0.1", 0), _EvilSite)
    _EvilSite.target = server.url
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server)
    page = context.new_page()
    try:
        # Act
        page.goto(f"http://localhost:{evil.server_port}/")

        # Assert: the server refused it (the page cannot even read the answer)
        expect(page.locator("#out")).not_to_have_text("…", timeout=TIMEOUT_MS)
        assert "refused a cross-origin http" in server.log.read_text()
        assert "200" not in page.locator("#out").inner_text()
    finally:
        context.close()
        evil.shutdown()
