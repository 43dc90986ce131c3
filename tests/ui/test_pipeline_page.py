"""A user takes a completed backtest to paper trading in the browser: "Create version from this
run" on the Results page, a paper promotion asked for and approved on the Pipeline page, the
version deployed to a paper engine that reaches Running, then stopped. A viewer sees the same
page with every action disabled and the reason.

Needs Chromium, a Docker daemon and the engine image (skipped without them on a developer
machine, failing under CI). The module serves its own app over a catalog the engine
container's unprivileged user can read; every container started is killed and removed.
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
    assert_no_traceback,
    sign_in,
    start_server,
)

pytestmark = [pytest.mark.ui, pytest.mark.docker]

BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
ENGINE_TIMEOUT_MS = 90_000  # a paper engine is Running within seconds; the rest is a busy machine
ANSWER_TIMEOUT_MS = 20_000
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def server(chromium_executable, tmp_path_factory) -> Server:
    """``python -m app`` over a sample catalog the engine container can read."""
    from services.catalog.sample import generate_sample_catalog

    docker_with_engine_image()
    folder = Path(tempfile.mkdtemp(prefix="workbench-ui-pipeline-"))
    folder.chmod(0o755)
    catalog = folder / "catalog"
    generate_sample_catalog(catalog)
    home = tmp_path_factory.mktemp("ui-pipeline-server")
    srv = start_server(home / "state", catalog, home / "server.log")
    yield srv
    try:
        wb = _workbench(srv)
        try:
            wb.engines.emergency_stop_all()
            wb.engines.cleanup()
        finally:
            wb.database.dispose()
    finally:
        _stop(srv.process)
        shutil.rmtree(folder, ignore_errors=True)


def _workbench(server: Server):
    from services.workbench import Workbench

    return Workbench.open(state_dir=server.state_dir)


def _completed_run(server: Server, fast: int) -> str:
    """A backtest queued here and run by the server's scheduler (three days of 1-minute bars)."""
    from services.backtest import BacktestSpec

    wb = _workbench(server)
    try:
        run_id = wb.backtests.submit(BacktestSpec(
            "ema_cross", BAR_TYPE, {"fast_ema_period": fast, "slow_ema_period": 12},
            start="2024-03-01", end="2024-03-04"))
        info = wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
        assert info.status == "Completed", info.error
        return run_id
    finally:
        wb.database.dispose()


def _pipeline_state(server: Server):
    """(versions, requests, deployments, engines) as the database has them."""
    wb = _workbench(server)
    try:
        pipeline = wb.pipeline
        return (pipeline.versions.list(), pipeline.promotions.list(),
                pipeline.deployments.list(), wb.engines.list_sessions())
    finally:
        wb.database.dispose()


def _confirm(page: Page, label: str, summary: re.Pattern) -> None:
    """The confirmation step shows what will happen; confirm it."""
    expect(page.get_by_text(summary).first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    page.get_by_role("button", name=label, exact=True).click()


def _type(page: Page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")  # inputs apply their value on change
    expect(field).to_have_value(value)


def test_a_completed_run_goes_to_a_paper_deployment_and_is_stopped(open_page, server,
                                                                    screenshot):
    # Arrange: a completed backtest, shown on the Results page
    run_id = _completed_run(server, fast=5)
    page = open_page(f"/results?run={run_id}")

    # Act 1: make its version
    page.get_by_role("button", name="Create version from this run").click()
    made = page.locator(".version-made")
    expect(made).to_contain_text("Created version", timeout=ANSWER_TIMEOUT_MS)
    (version,), requests, _, _ = _pipeline_state(server)
    assert version.source_run_id == run_id and requests == []
    assert version.parameters["fast_ema_period"] == 5
    made.get_by_role("link", name="open it on the Pipeline page").click()

    # Assert 1: the pipeline page shows it in research, with the run as evidence
    expect(page.get_by_role("heading", name="Strategy deployment pipeline")).to_be_visible(
        timeout=30_000)
    research = page.locator(".stage-research")
    expect(research).to_contain_text(version.short_id, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".version-summary")).to_contain_text(
        "1 completed backtest(s)", timeout=ANSWER_TIMEOUT_MS)

    # Act 2: ask for paper, confirm, approve with a comment, confirm
    page.get_by_role("button", name="Request paper promotion…").click()
    _confirm(page, "Request paper", re.compile(rf"Ask to promote version {version.short_id}"))
    checklist = page.locator(".gate-checklist")
    expect(checklist).to_contain_text("backtest", timeout=ANSWER_TIMEOUT_MS)
    expect(checklist).to_contain_text("0 of 1 approvals")
    _type(page, "Comment", "paper first")
    page.get_by_role("button", name="Approve…").click()
    _confirm(page, "Approve", re.compile(r"Approve request \S+ \(version"))

    # Assert 2: approved by the admin with the comment; the version moved to paper
    expect(checklist).to_contain_text("Approved", timeout=ANSWER_TIMEOUT_MS)
    expect(checklist).to_contain_text("approved by admin")
    expect(page.locator(".stage-paper")).to_contain_text(version.short_id)
    _, (request,), _, _ = _pipeline_state(server)
    assert request.status == "Approved"
    assert [(d.actor, d.comment) for d in request.decisions] == [("admin", "paper first")]

    # Act 3: deploy to paper, replaying fast from the last day of the data
    _type(page, "Replay from (paper, ISO time)", "2024-03-04T00:00:00")
    _type(page, "Replay speed (x real time)", "600")
    page.get_by_role("button", name="Deploy…").click()
    _confirm(page, "Deploy to paper", re.compile(rf"Deploy version {version.short_id}"))

    # Assert 3: the deployment's engine is Running with the version's parameters
    detail = page.locator(".deployment-detail")
    expect(detail).to_contain_text("Running", timeout=ENGINE_TIMEOUT_MS)
    _, _, (deployment,), (engine,) = _pipeline_state(server)
    assert (deployment.version_id, deployment.stage, deployment.actor) == (
        version.version_id, "paper", "admin")
    assert engine.session_id == deployment.engine_session_id and engine.state == "Running"
    assert engine.parameters["replay_speed"] == 600
    assert engine.parameters["fast_ema_period"] == 5
    expect(page.locator(".stage-paper .pipeline-chip.running")).to_have_count(1)
    page.wait_for_timeout(1500)  # the page settles before the picture
    shot = screenshot("pipeline")
    assert shot.stat().st_size > 50_000

    # Act 4: stop it
    page.get_by_role("button", name="Stop…", exact=True).click()
    _confirm(page, "Stop", re.compile(rf"Stop deployment {deployment.deployment_id}"))

    # Assert 4: the deployment is closed and its engine stopped
    expect(detail).to_contain_text("ended:", timeout=ENGINE_TIMEOUT_MS)
    _, _, (stopped,), (engine,) = _pipeline_state(server)
    assert stopped.state == "Stopped" and not stopped.is_active
    assert engine.state == "Stopped"
    expect(page.locator(".stage-paper .pipeline-chip.running")).to_have_count(0)

    # Act 5: compare what it traded with a backtest of the same window
    page.get_by_role("button", name="Compute drift…").click()
    _confirm(page, "Compute drift", re.compile(rf"Compute the drift of {deployment.deployment_id}"))

    # Assert 5: the drift summary and chart; the deployment records its drift run
    summary = page.locator(".drift-summary")
    expect(summary).to_contain_text("Drift against run", timeout=RUN_TIMEOUT_S * 1000)
    expect(summary).to_contain_text("Correlation of returns")
    expect(page.get_by_role("button", name="Download drift report")).to_be_visible()
    _, _, (measured,), _ = _pipeline_state(server)
    assert measured.drift_run_id and measured.drift is not None
    expect(summary).to_contain_text(measured.drift_run_id)
    # The list's PnL of the ended deployment is its fills' (closing fills included), as drifted
    engine_pnl = f"{measured.drift['engine_pnl']:,.2f}"
    expect(summary).to_contain_text(f"{engine_pnl} / ")
    expect(page.locator(".deployment-list")).to_contain_text(engine_pnl)
    page.wait_for_timeout(1500)
    screenshot("pipeline-drift")


def test_a_viewer_sees_every_action_disabled_with_the_reason(browser, server):
    from services.backtest import BacktestSpec

    # Arrange: a version with a pending paper request, and another to compare it with
    run_id = _completed_run(server, fast=7)
    wb = _workbench(server)
    try:
        version = wb.pipeline.versions.create_from_run(run_id).version
        wb.pipeline.promotions.request(version.version_id, "paper")
        other = wb.pipeline.versions.create_from_template(BacktestSpec(
            "ema_cross", BAR_TYPE, {"fast_ema_period": 9, "slow_ema_period": 12})).version
    finally:
        wb.database.dispose()
    context = browser.new_context(viewport=VIEWPORT)
    sign_in(context, server, VIEWER, VIEWER_PASSWORD)
    page = context.new_page()
    log_start = server.log_size()
    try:
        # Act
        page.goto(f"{server.url}/pipeline?version={version.version_id}")
        expect(page.get_by_role("heading", name="Strategy deployment pipeline")).to_be_visible(
            timeout=30_000)
        expect(page.locator(".gate-checklist")).to_contain_text("Pending",
                                                                 timeout=ANSWER_TIMEOUT_MS)

        # Assert: each action is disabled and the page says why
        for name in ("Request paper promotion…", "Request live promotion…", "Approve…",
                     "Reject…", "Deploy…"):
            expect(page.get_by_role("button", name=name, exact=True)).to_be_disabled()
        notes = page.locator(".permission-note")
        expect(notes.filter(has_text="ui-viewer may not request strategy promotions: the "
                                     "researcher or trader role is needed.")).to_be_visible()
        expect(notes.filter(has_text="ui-viewer may not approve paper promotions: the approver "
                                     "or trader role is needed.")).to_be_visible()
        expect(notes.filter(has_text="ui-viewer may not deploy strategies: the trader role is "
                                     "needed.")).to_be_visible()
        # A viewer may read: the two versions side by side
        page.get_by_label("Compare with").select_option(
            label=f"{other.short_id} (ema_cross, research)")
        diff = page.locator(".version-diff")
        expect(diff).to_contain_text("fast_ema_period", timeout=ANSWER_TIMEOUT_MS)
        expect(diff).to_contain_text(f"{version.short_id} (selected)")
        row = diff.locator(".tabulator-row").filter(has_text="parameters")
        expect(row).to_contain_text("7")
        expect(row).to_contain_text("9")
        page.goto(f"{server.url}/results?run={run_id}")
        expect(page.get_by_role("button", name="Create version from this run")).to_be_disabled(
            timeout=30_000)
        assert_no_traceback(page)
        assert server.log_problems(log_start) == []
    finally:
        context.close()
