"""The deployment pipeline with real Docker engines and real backtests: a backtest becomes a
version, is promoted to paper and approved, deployed, runs, is stopped, and its drift is
measured against a backtest of the exact window it traded; live promotions need two approvers
other than the author; rollbacks, rollout steps and the refusals leave nothing half-written.

Needs a Docker daemon and the engine image (skips on a machine without them, fails under CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from services.backtest import BacktestSpec
from services.db import EngineSessionRow
from services.engine.service import ERROR, RUNNING, STOPPED
from services.errors import PermissionDenied, PipelineError, ValidationError
from services.identity.principal import Principal
from services.pipeline import DeployOptions
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, docker_with_engine_image

pytestmark = [pytest.mark.integration, pytest.mark.docker]

BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
PARAMETERS = {"fast_ema_period": 5, "slow_ema_period": 12}
# 600 x: a bar every 100 ms of wall time, so a busy machine's delays stay within a bar.
REPLAY = DeployOptions(replay_start="2024-03-04T00:00:00", replay_speed=600)
TRADES_FOR_S = 20  # wall seconds a paper deployment trades: 200 bars
ALICE = Principal.user("alice", {"researcher", "trader", "approver"})
BOB = Principal.user("bob", {"approver"})
CAROL = Principal.user("carol", {"approver", "live_trader"})
LIVE_LIMITS = {"max_position": 1, "max_daily_loss": 500, "max_drawdown_pct": 5}


@pytest.fixture(scope="module")
def docker_ready():
    return docker_with_engine_image()


@pytest.fixture(scope="module")
def engine_catalog(sample_catalog_path):
    """The sample catalog where the container's unprivileged user can read it."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-pipeline-catalog-"))
    folder.chmod(0o755)
    shutil.copytree(sample_catalog_path, folder / "catalog")
    yield folder / "catalog"
    shutil.rmtree(folder, ignore_errors=True)


def _open(tmp, catalog, database_url):
    return Workbench.open(state_dir=tmp / "state", catalog=str(catalog), scheduler=True,
                          database_url=database_url)


def _teardown(wb):
    for info in wb.engines.list_sessions():
        if info.is_active:
            wb.engines.emergency_stop(info.session_id)
    wb.engines.cleanup()
    wb.close()


@pytest.fixture(scope="module")
def paper(docker_ready, engine_catalog, tmp_path_factory, new_database_url):
    """One paper deployment run start to finish, and its drift (shared by the tests here; the
    live gate reads a paper run of one minute of engine time, the drift within bounds)."""
    environment = pytest.MonkeyPatch()
    environment.setenv("WORKBENCH_GATE_PAPER_MINUTES", "60")
    wb = _open(tmp_path_factory.mktemp("pipeline"), engine_catalog, new_database_url())
    pipeline = wb.pipeline
    run_id = wb.backtests.submit(BacktestSpec("ema_cross", BAR_TYPE, PARAMETERS,
                                              start="2024-03-01", end="2024-03-04"))
    run = wb.backtests.wait(run_id, timeout=300)
    assert run.status == "Completed", run.error
    version = pipeline.versions.create_from_run(run_id, note="EMA 5/12", principal=ALICE).version
    request = pipeline.promotions.request(version.version_id, "paper", principal=ALICE)
    approved = pipeline.promotions.approve(request.request_id, comment="paper first",
                                           principal=ALICE)
    deployment = pipeline.deployments.deploy(version.version_id, "paper", options=REPLAY,
                                             principal=ALICE)
    running = wb.engines.wait_for(deployment.engine_session_id, (RUNNING, ERROR), timeout=120)
    seen_running = pipeline.deployments.get(deployment.deployment_id)
    time.sleep(TRADES_FOR_S)
    stopped = pipeline.deployments.stop(deployment.deployment_id, principal=ALICE)
    report = pipeline.drift.compute(deployment.deployment_id, principal=ALICE)
    yield {"wb": wb, "version": version, "run_id": run_id, "request": request,
           "approved": approved, "deployment": deployment, "running": running,
           "seen_running": seen_running, "stopped": stopped, "report": report}
    environment.undo()
    _teardown(wb)


def test_a_backtest_goes_to_paper_through_a_version_and_an_approval(paper):
    # Assert: the version is the run's, with its backtest as evidence
    version, wb = paper["version"], paper["wb"]
    assert version.source_run_id == paper["run_id"]
    assert paper["run_id"] in version.completed_run_ids
    assert version.parameters["fast_ema_period"] == 5
    assert [g.name for g in paper["request"].gates] == ["backtest"]
    assert paper["approved"].status == "Approved"
    assert wb.pipeline.versions.get(version.version_id).stage == "paper"
    # The deployment ran its engine with the version's exact strategy config.
    assert paper["running"].state == RUNNING, paper["running"].error
    assert paper["seen_running"].state == RUNNING
    engine = wb.engines.get(paper["deployment"].engine_session_id)
    assert engine.mode == "paper" and engine.name == paper["deployment"].engine_name
    with wb.database.session() as session:
        node = session.get(EngineSessionRow, engine.session_id).config["node"]
    assert node["strategies"][0]["config"] == version.content["strategy"]["config"]
    assert engine.parameters["replay_speed"] == 600.0
    # Stopped: the engine ended gracefully and the deployment is closed.
    assert paper["stopped"].state == "Stopped"
    assert wb.engines.get(engine.session_id).state == STOPPED
    actions = [e.action for e in wb.audit.entries("strategy.", actor="alice")]
    for action in ("strategy.version", "strategy.promote", "strategy.approve",
                   "strategy.deploy", "strategy.stop", "strategy.drift"):
        assert action in actions


def test_drift_compares_the_engine_with_a_backtest_of_the_window_it_traded(paper):
    # Arrange
    report, wb = paper["report"], paper["wb"]
    summary = report.summary()

    # Assert: the window starts where the replay did and spans what the engine traded
    assert summary["window_start"] == "2024-03-04T00:00:00+00:00"
    assert TRADES_FOR_S * 600 / 60 * 0.8 <= summary["window_minutes"] <= (
        TRADES_FOR_S + 15) * 600 / 60
    drift_run = wb.backtests.get(report.run_id)
    assert drift_run.status == "Completed"
    assert (drift_run.start.isoformat(), drift_run.end.isoformat()) == (
        summary["window_start"], summary["window_end"])
    assert report.run_id in wb.pipeline.versions.get(paper["version"].version_id).run_ids
    # Deterministic replay: the same trades as the backtest, each at the backtest's price, or,
    # when the loaded engine's timing slipped by a bar (a bar is 100 ms at 600x; the engine's
    # fill times are wall-clock times mapped back to the replayed bars), whole bars late at the
    # close of the bar it filled on; never early (README: what drifts, and why).
    assert summary["engine_fills"] > 4
    assert summary["engine_fills"] == summary["backtest_fills"] == summary["matched_fills"]
    assert summary["missed_fills"] == summary["extra_fills"] == 0
    fills = report.result.fills
    on_time = fills[fills["time_difference_s"] == 0]
    late = fills[fills["time_difference_s"] != 0]
    assert (on_time["engine_price"] == on_time["backtest_price"]).all()
    assert (late["time_difference_s"] % 60 == 0).all()
    assert (late["time_difference_s"] > 0).all(), late
    closes = report.result.equity["close"]
    assert late["engine_price"].tolist() == closes.loc[late["engine_time"]].tolist()
    assert len(late) <= len(fills) // 5, late
    if late.empty:
        assert summary["slippage_total"] == 0.0
        assert summary["engine_commissions"] == pytest.approx(summary["backtest_commissions"])
        assert summary["pnl_difference"] == pytest.approx(0.0, abs=1e-6)
    assert summary["correlation"] > 0.99
    assert report.within_bounds
    assert summary["latency_ms"]["median"] >= 0
    # Kept for the live gate, and shown again without a rerun.
    stored = wb.pipeline.deployments.get(paper["deployment"].deployment_id)
    assert stored.drift["run_id"] == report.run_id and stored.drift_run_id == report.run_id
    again = wb.pipeline.drift.report(paper["deployment"].deployment_id)
    assert again.summary()["matched_fills"] == summary["matched_fills"]


def test_the_cli_writes_the_html_drift_report(paper, tmp_path):
    wb = paper["wb"]
    target = tmp_path / "drift.html"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "strategy", "drift",
         paper["deployment"].deployment_id, "--json", "-o", str(target), "--state-dir",
         str(wb.settings.state_dir), "--catalog", wb.catalog.location,
         "--database-url", wb.settings.database_url],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, check=False)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["deployment_id"] == paper["deployment"].deployment_id
    assert payload["status"] == "within_bounds"
    assert payload["engine_session_id"] == paper["deployment"].engine_session_id
    page = target.read_text()
    assert "Drift: ema_cross in paper" in page and "Correlation of returns" in page
    assert "cdn.bokeh.org" not in page  # opens offline


def test_live_needs_two_approvers_other_than_the_author(paper):
    # Arrange: the paper run passed the gates (one hour of engine time, drift within bounds)
    wb, version = paper["wb"], paper["version"]
    request = wb.pipeline.promotions.request(version.version_id, "live",
                                             risk_limits=LIVE_LIMITS, principal=ALICE)
    assert request.gates_pass, [g for g in request.gates if not g.passed]

    # Act / Assert: the author may not approve; one approver is not enough
    with pytest.raises(PermissionDenied, match="alice requested this live promotion"):
        wb.pipeline.promotions.approve(request.request_id, principal=ALICE)
    once = wb.pipeline.promotions.approve(request.request_id, principal=BOB)
    assert once.status == "Pending"
    with pytest.raises(PipelineError, match="is not approved for live"):
        wb.pipeline.deployments.deploy(version.version_id, "live", principal=CAROL,
                                       confirm=wb.pipeline.deployments.engine_name(version,
                                                                                   "live"))
    refused = [(e.action, e.detail) for e in wb.audit.entries("strategy.", actor="alice")
               if e.outcome == "refused"]
    assert ("strategy.approve_live", ("alice requested this live promotion and may not decide "
                                      "it: live needs two approvers other than the author."
                                      )) in refused
    # A second approver makes it Approved; live then still needs the typed confirmation.
    twice = wb.pipeline.promotions.approve(request.request_id, principal=CAROL)
    assert twice.status == "Approved"
    sessions = len(wb.engines.list_sessions())
    with pytest.raises(PermissionDenied, match="Type the engine's name to confirm"):
        wb.pipeline.deployments.deploy(version.version_id, "live", principal=CAROL)
    assert len(wb.engines.list_sessions()) == sessions  # no engine was started


def test_rollback_redeploys_the_version_approved_before_and_links_what_it_replaced(paper):
    # Arrange: a second version of the strategy, approved for paper after the first
    wb, first = paper["wb"], paper["version"]
    pipeline = wb.pipeline
    second = pipeline.versions.create_from_template(
        BacktestSpec("ema_cross", BAR_TYPE, {"fast_ema_period": 6, "slow_ema_period": 12}),
        principal=ALICE).version
    run_id = pipeline.versions.backtest(second.version_id, start="2024-03-01",
                                        end="2024-03-02", principal=ALICE)
    assert wb.backtests.wait(run_id, timeout=300).status == "Completed"
    request = pipeline.promotions.request(second.version_id, "paper", principal=ALICE)
    pipeline.promotions.approve(request.request_id, principal=BOB)
    deployed = pipeline.deployments.deploy(second.version_id, "paper", options=REPLAY,
                                           principal=ALICE)
    assert wb.engines.wait_for(deployed.engine_session_id, (RUNNING, ERROR),
                               timeout=120).state == RUNNING

    # Act
    rolled = pipeline.deployments.rollback(deployed.deployment_id, principal=ALICE)

    # Assert
    assert (rolled.kind, rolled.version_id, rolled.replaces) == (
        "rollback", first.version_id, deployed.deployment_id)
    assert pipeline.deployments.get(deployed.deployment_id).state == "Replaced"
    assert wb.engines.get(deployed.engine_session_id).state == STOPPED
    assert wb.engines.wait_for(rolled.engine_session_id, (RUNNING, ERROR),
                               timeout=120).state == RUNNING
    # Nothing was approved before the first version: no further rollback.
    with pytest.raises(PipelineError, match="nothing to roll back to"):
        pipeline.deployments.rollback(rolled.deployment_id, principal=ALICE)
    # Two deployments of one strategy in one stage do not run at once.
    with pytest.raises(PipelineError, match="already runs in paper"):
        pipeline.deployments.deploy(second.version_id, "paper", options=REPLAY,
                                    principal=ALICE)
    pipeline.deployments.stop(rolled.deployment_id, principal=ALICE)


def test_a_rollout_steps_the_trade_size_up_on_a_new_engine(paper):
    # Arrange: the first version on paper at 10 % of its size
    wb, version = paper["wb"], paper["version"]
    pipeline = wb.pipeline
    small = pipeline.deployments.deploy(version.version_id, "paper",
                                        options=replace(REPLAY, fraction=0.1), principal=ALICE)
    assert wb.engines.wait_for(small.engine_session_id, (RUNNING, ERROR),
                               timeout=120).state == RUNNING
    assert wb.engines.get(small.engine_session_id).parameters["trade_size"] == "0.01"
    with pytest.raises(PermissionDenied, match="may not step up a live rollout"):
        pipeline.deployments.step_up(small.deployment_id, principal=Principal.user(
            "tom", {"trader"}))

    # Act: an approver steps it up
    bigger = pipeline.deployments.step_up(small.deployment_id, principal=BOB)

    # Assert
    assert (bigger.kind, bigger.capital_fraction, bigger.replaces) == (
        "rollout", 0.5, small.deployment_id)
    assert wb.engines.get(bigger.engine_session_id).parameters["trade_size"] == "0.05"
    assert wb.engines.get(small.engine_session_id).state == STOPPED
    entry = next(e for e in wb.audit.entries("strategy.rollout", actor="bob")
                 if e.outcome == "started")
    assert "at 50%" in entry.detail
    pipeline.deployments.stop(bigger.deployment_id, principal=ALICE)


def test_a_deployment_whose_engine_died_is_refused_what_needs_it_running(paper, docker_ready):
    # Arrange: the engine is killed from outside the workbench
    wb, version = paper["wb"], paper["version"]
    pipeline = wb.pipeline
    deployment = pipeline.deployments.deploy(version.version_id, "paper",
                                             options=replace(REPLAY, fraction=0.1),
                                             principal=ALICE)
    engine = wb.engines.wait_for(deployment.engine_session_id, (RUNNING, ERROR), timeout=120)
    docker_ready.client().containers.get(engine.container_id).kill()
    assert wb.engines.wait_for(engine.session_id, (ERROR,), timeout=30).state == ERROR

    # Act / Assert
    with pytest.raises(PipelineError, match="engine is Error .*killed from outside"):
        pipeline.deployments.step_up(deployment.deployment_id, principal=BOB)
    with pytest.raises(PipelineError, match="is Error"):
        pipeline.deployments.pause(deployment.deployment_id, principal=ALICE)
    closed = pipeline.deployments.stop(deployment.deployment_id, principal=ALICE)
    assert closed.state == "Stopped"
    assert "its engine had already ended: Error" in closed.end_reason


def test_a_failed_deploy_leaves_no_deployment_and_no_container(paper, docker_ready):
    wb, version = paper["wb"], paper["version"]
    before = (len(wb.pipeline.deployments.list()), len(wb.engines.containers()))
    with pytest.raises(ValidationError, match="replay_start"):
        wb.pipeline.deployments.deploy(version.version_id, "paper", principal=ALICE,
                                       options=DeployOptions(replay_start="2024-13-45"))
    with pytest.raises(PermissionDenied, match="may not deploy strategies"):
        wb.pipeline.deployments.deploy(version.version_id, "paper",
                                       principal=Principal.user("vera", set()))
    assert (len(wb.pipeline.deployments.list()), len(wb.engines.containers())) == before
