"""Browser-test plumbing: one real server over a generated sample catalog, one Chromium.

The server is the product's own entry point (``python -m app``) in a subprocess on a free port,
with its own state folder, so the tests see exactly what a user sees. Every page a test opens
is checked at teardown: no "Traceback" text and no browser console error or uncaught exception.

Chromium is Debian's (``playwright install`` cannot download browsers here); without it the
tests skip on a developer machine and fail under CI (see tests/conftest.py).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT, chromium_path, skip_or_fail

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]
SERVER_START_TIMEOUT_S = 60
# Tall enough that the results page's cards and first chart are in one screenshot.
VIEWPORT = {"width": 1440, "height": 1600}
ADMIN_PASSWORD = "ui-admin-password"
VIEWER, VIEWER_PASSWORD = "ui-viewer", "ui-viewer-password"


@dataclass
class Server:
    """The served app: its address and the state folder it writes runs into."""

    url: str
    state_dir: Path
    catalog: Path
    process: subprocess.Popen
    log: Path

    def run_ids(self) -> set[str]:
        """Ids of the runs submitted so far, from the server's database (a run's folder is
        written only when it starts)."""
        import sqlite3

        database = self.state_dir / "workbench.db"
        if not database.exists():
            return set()
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return {row[0] for row in connection.execute("SELECT run_id FROM backtest_runs")}

    def run_window(self, run_id: str) -> tuple[str, str]:
        """The start and end (UTC, as text without the zone) the server stored for a run."""
        import sqlite3

        with sqlite3.connect(f"file:{self.state_dir / 'workbench.db'}?mode=ro",
                             uri=True) as connection:
            start, end = connection.execute(
                'SELECT start, "end" FROM backtest_runs WHERE run_id = ?', (run_id,)).fetchone()
        return start[:19], end[:19]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_problems(self, since: int) -> list[str]:
        """Tracebacks and Bokeh validation warnings the server logged after byte ``since``."""
        with open(self.log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines()
                if "Traceback (most recent call last)" in line or "bokeh.core.validation" in line]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        skip_or_fail("no Chromium on PATH (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def ui_catalog(tmp_path_factory, chromium_executable) -> Path:
    """The workbench's synthetic sample catalog, generated once per session (~7 s)."""
    from services.catalog.sample import generate_sample_catalog, is_sample_catalog

    path = tmp_path_factory.mktemp("ui-sample") / "catalog"
    generate_sample_catalog(path)
    assert is_sample_catalog(path)
    return path


# Id of the run the state folder holds before the server starts (see _seed_failed_run).
FAILED_RUN_ID = "failed-before-start"


def _seed_failed_run(state_dir: Path, catalog: Path) -> None:
    """Leave a run whose worker died mid-run, as a server stopped mid-run leaves it.

    The server's start-up reconcile fails it ("Interrupted ..."), so the pages always have a
    run without results to show next to the ones the tests complete.
    """
    from datetime import UTC, datetime

    from services.db import BacktestRunRow
    from services.workbench import Workbench

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    wb = Workbench.open(state_dir=state_dir, catalog=str(catalog))
    try:
        folder = wb.settings.runs_dir / FAILED_RUN_ID
        folder.mkdir(parents=True)
        now = datetime.now(UTC)
        with wb.database.session() as session:
            session.add(BacktestRunRow(
                run_id=FAILED_RUN_ID, status="Running", strategy="ema_cross",
                instrument_id="AAPL.XNAS", bar_type="AAPL.XNAS-1-MINUTE-LAST-EXTERNAL", start=now,
                end=now, spec={}, run_folder=str(folder), actor="ui-test", created_at=now,
                started_at=now, worker_pid=dead.pid, phase="running", currency="USD",
            ))
    finally:
        wb.database.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory, ui_catalog) -> Server:
    """``python -m app`` on a free port over the sample catalog, until the session ends.

    Its state folder starts with one interrupted run (FAILED_RUN_ID), failed at start-up.
    """
    home = tmp_path_factory.mktemp("ui-server")
    state_dir, log = home / "state", home / "server.log"
    _seed_failed_run(state_dir, ui_catalog)
    srv = start_server(state_dir, ui_catalog, log)
    yield srv
    _stop(srv.process)


@pytest.fixture(scope="module")
def empty_catalog_server(tmp_path_factory, chromium_executable) -> Server:
    """``python -m app`` over an empty temporary catalog, for tests that import data into it
    (the shared sample catalog of ``server`` stays untouched)."""
    home = tmp_path_factory.mktemp("ui-empty-catalog")
    catalog, state_dir, log = home / "catalog", home / "state", home / "server.log"
    srv = start_server(state_dir, catalog, log)
    yield srv
    _stop(srv.process)


def _seed_viewer(state_dir: Path, catalog: Path) -> None:
    """A user who may only read (VIEWER), besides the admin the server creates."""
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir, catalog=str(catalog))
    try:
        wb.users.add(VIEWER, ["viewer"], VIEWER_PASSWORD)
    finally:
        wb.database.dispose()


def start_server(state_dir: Path, catalog: Path, log: Path) -> Server:
    """Start ``python -m app`` on a free port and wait until it serves its first page.

    The state folder gets a viewer (VIEWER); the admin's password is ADMIN_PASSWORD."""
    port = _free_port()
    password_file = state_dir.parent / "admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--state-dir", str(state_dir),
             "--catalog", str(catalog), "--admin-password-file", str(password_file)],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    srv = Server(f"http://127.0.0.1:{port}", state_dir, catalog, process, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while _get_status(srv.url + "/") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"the app did not serve {srv.url}/ within {SERVER_START_TIMEOUT_S} s "
                        f"(exit code {process.poll()}); its output:\n{srv.log_tail()}")
        time.sleep(0.25)
    _seed_viewer(state_dir, catalog)  # after the first start made the admin
    return srv


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and the backtest workers it started (they run in their own sessions)."""
    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    for worker in workers:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(workers, timeout=5)


@pytest.fixture(scope="module")
def browser(chromium_executable):
    # Module scope: Playwright's sync API keeps an asyncio loop marked running in this thread
    # while it is open, and Panel would schedule the async callbacks of components in later
    # (non-browser) tests onto that loop, where they never run.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """What went wrong in the browser while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def sign_in(context, server: Server, username: str = "admin",
            password: str = ADMIN_PASSWORD) -> None:
    """Sign the browser context in (its cookie jar gets the session cookie)."""
    response = context.request.post(f"{server.url}/login", form={
        "username": username, "password": password, "next": "/"}, max_redirects=0)
    assert response.status == 303, f"sign-in as {username} failed: {response.status}"


@pytest.fixture
def page(browser, server):
    """A fresh browser tab signed in as the admin; at teardown it must show no traceback, have
    logged no browser error, and the server must have logged no traceback or Bokeh warning."""
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server)
    tab = context.new_page()
    problems = PageProblems()
    tab.on("console", lambda m: problems.console_errors.append(f"{m.text} @ {m.location}")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.page_errors.append(str(e)))
    log_start = server.log_size()
    yield tab
    try:
        assert_no_traceback(tab)
        assert not problems.page_errors, f"uncaught exceptions in the page: {problems.page_errors}"
        assert not problems.console_errors, f"browser console errors: {problems.console_errors}"
        logged = server.log_problems(log_start)
        assert not logged, f"the server logged during the test: {logged}\n{server.log_tail()}"
    finally:
        context.close()


def assert_no_traceback(tab) -> None:
    """No Python traceback anywhere on the page, shadow DOM included."""
    from playwright.sync_api import expect

    assert "Traceback" not in tab.content()
    # Panel renders into shadow roots, which page.content() omits; locators pierce them.
    expect(tab.get_by_text(re.compile("Traceback"))).to_have_count(0)


@pytest.fixture
def open_page(page, server):
    """``open_page("/backtest")`` -> the tab, once the app has rendered that page."""
    from playwright.sync_api import expect

    def visit(path: str):
        page.goto(server.url + path)
        # The template's header, then the page's own heading: the session has rendered.
        expect(page.get_by_role("link", name="Nautilus Workbench")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("heading", level=2).first).to_be_visible(timeout=30_000)
        assert_no_traceback(page)
        return page

    return visit


@pytest.fixture
def screenshot(page):
    """``screenshot("results")`` writes tests/ui/artifacts/results.png (kept out of git)."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


def choose_strategy(page, name: str) -> None:
    """Pick the strategy template ``name`` in the Strategy menu, as a user does: by its
    title, which ends with the name ("EMA cross (ema_cross)")."""
    menu = page.get_by_label("Strategy", exact=True)
    menu.select_option(label=menu.locator("option", has_text=f"({name})").text_content())
