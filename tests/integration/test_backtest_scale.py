"""Backtests at scale: the queue, pause/resume, cancel, sweeps on local workers and on Dask,
restart recovery and a full disk, with real NautilusTrader workers.

Runs use short slices of the generated sample catalog so the suite stays fast on two cores;
the runs that must be caught mid-flight use long slices and are cancelled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from services.backtest.runtime import DaskRuntime
from services.backtest.spec import BacktestSpec
from services.backtest.sweep import SweepSpec
from services.db import BacktestRunRow, Database, SweepRow
from services.errors import BacktestError, RuntimeUnavailableError, ValidationError
from services.identity.principal import Principal
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, close_workbench, skip_or_fail, wait_for_status

TESTER = Principal.user("tester", {"researcher", "admin"})

pytestmark = pytest.mark.integration

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 240
# A 6-run sweep: fast x slow, on three days of 1-minute bars.
SWEEP_GRID = {"fast_ema_period": ["5,10,20"], "slow_ema_period": ["30,60"]}


def _spec(start: str, end: str, label: str, fast: int = 10, slow: int = 20) -> BacktestSpec:
    return BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start=start, end=end, label=label,
                        parameters={"fast_ema_period": fast, "slow_ema_period": slow})


def _short(label: str) -> BacktestSpec:
    return _spec("2024-03-04", "2024-03-07", label)


def _long(label: str) -> BacktestSpec:
    # A whole year with slow EMAs: runs far longer than any test waits for it.
    return _spec("2024-01-01", "2024-12-31", label, fast=50, slow=200)


def _wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _in_engine(wb: Workbench, run_id: str):
    """The run once its engine is in its run loop (the progress actor has reported)."""
    info = wb.backtests.get(run_id)
    assert not info.is_final, f"{run_id} ended early: {info.status} {info.error}"
    return info if info.phase == "running" and info.events else None


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.fixture
def fresh_workbench(tmp_path, sample_catalog_path):
    """``fresh_workbench(max_parallel)``: a Workbench with its own state folder and database."""
    opened = []

    def open_workbench(max_parallel: int | None = None, **kwargs) -> Workbench:
        wb = Workbench.open(state_dir=kwargs.pop("state_dir", tmp_path / "state"),
                            catalog=str(sample_catalog_path), max_parallel=max_parallel,
                            scheduler=True, **kwargs)
        opened.append(wb)
        return wb

    yield open_workbench
    for wb in opened:
        close_workbench(wb)


# -- the queue: four at once, pause one, cancel one ---------------------------------------------
def test_four_concurrent_runs_pause_resume_and_cancel(fresh_workbench):
    # Arrange: four slots, four runs: one to pause, one to cancel, two to let finish.
    wb = fresh_workbench(max_parallel=4)
    to_pause = wb.backtests.submit(_spec("2024-02-01", "2024-03-01", "to pause", 50, 200))
    to_cancel = wb.backtests.submit(_long("to cancel"))
    others = [wb.backtests.submit(_short(f"plain {i}")) for i in range(2)]
    runs = [to_pause, to_cancel, *others]

    # Assert: all four started at once (nothing queued behind them).
    assert [wait_for_status(wb, r, "Running").status for r in runs] == ["Running"] * 4

    # Act 1: pause a run inside its engine loop.
    _wait_for(lambda: _in_engine(wb, to_pause), 120, "the run to pause to reach its engine")
    paused = wb.backtests.pause(to_pause, principal=TESTER)
    pid = paused_pid = _worker_pid(wb, to_pause)
    time.sleep(0.5)  # let the stop signal land
    cpu_before = _cpu_seconds(pid)
    time.sleep(2.0)
    cpu_after = _cpu_seconds(pid)

    # Assert 1: paused, its worker stopped and using no CPU; the others carry on.
    assert paused.status == "Paused" and paused.phase == "paused"
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert cpu_after - cpu_before < 0.02, f"paused worker used {cpu_after - cpu_before:.3f} s CPU"
    with pytest.raises(BacktestError, match="only a Running run can be paused"):
        wb.backtests.pause(to_pause)

    # Act 2: cancel another run in flight.
    _wait_for(lambda: _in_engine(wb, to_cancel), 120, "the run to cancel to reach its engine")
    cancel_pid = _worker_pid(wb, to_cancel)
    cancelled = wb.backtests.cancel(to_cancel, principal=TESTER)

    # Act 3: resume the paused run; it uses CPU again.
    resumed = wb.backtests.resume(to_pause, principal=TESTER)
    _wait_for(lambda: not psutil.pid_exists(paused_pid) or _cpu_seconds(paused_pid) > cpu_after + 0.05,
              30, "the resumed worker to use CPU again")
    finals = {r: wb.backtests.wait(r, timeout=RUN_TIMEOUT_S) for r in runs}

    # Assert 2: statuses, artefacts, resources and the audit trail.
    assert resumed.status == "Running"
    assert cancelled.status == "Cancelled" and "tester" in cancelled.error
    _wait_for(lambda: not psutil.pid_exists(cancel_pid)
              or psutil.Process(cancel_pid).status() == psutil.STATUS_ZOMBIE, 10,
              "the cancelled worker to end")
    assert finals[to_cancel].status == "Cancelled"
    cancelled_folder = Path(finals[to_cancel].run_folder)
    assert not (cancelled_folder / "results").exists()
    assert not (cancelled_folder / "results.partial").exists()
    assert (cancelled_folder / "spec.json").exists()  # the record of what was asked stays
    for run_id in (to_pause, *others):
        info = finals[run_id]
        assert info.status == "Completed", info.error
        assert (Path(info.run_folder) / "results" / "summary.json").exists()
        assert info.cpu_seconds and info.cpu_seconds > 0.5
        assert info.memory_bytes and info.memory_bytes > 50_000_000
    with wb.database.session() as session:
        paused_row = session.get(BacktestRunRow, to_pause)
        assert paused_row.paused_seconds >= 2.0  # the pause is excluded from the ETA
    with pytest.raises(BacktestError, match="only a Paused run can be resumed"):
        wb.backtests.resume(to_pause)


def _worker_pid(wb: Workbench, run_id: str) -> int:
    with wb.database.session() as session:
        return session.get(BacktestRunRow, run_id).worker_pid


def test_progress_reports_sim_time_events_eta_and_resources(fresh_workbench):
    # Arrange
    wb = fresh_workbench(max_parallel=1)
    run_id = wb.backtests.submit(_long("progress"))
    _wait_for(lambda: _in_engine(wb, run_id), 120, "the run to reach its engine")

    # Act: two readings a little over 2 s apart.
    first = wb.backtests.get(run_id)
    time.sleep(2.2)
    second = wb.backtests.get(run_id)
    wb.backtests.cancel(run_id)

    # Assert: simulated time, events and progress move forward within 2 s; an ETA, CPU, memory.
    assert first.sim_time is not None and second.sim_time > first.sim_time
    assert first.start <= first.sim_time <= first.end
    assert second.events > first.events > 0
    assert 0 < first.progress < second.progress < 1
    assert second.eta is not None and 0 < second.eta.low <= second.eta.seconds <= second.eta.high
    assert second.cpu_seconds > 0 and second.memory_bytes > 50_000_000


def test_queue_holds_runs_beyond_max_parallel(fresh_workbench):
    # Arrange
    wb = fresh_workbench(max_parallel=1)

    # Act
    first = wb.backtests.submit(_short("first"))
    second = wb.backtests.submit(_short("second"))

    # Assert: the second waits for the first, then runs.
    assert wait_for_status(wb, first, "Running").status == "Running"
    assert wb.backtests.get(second).status == "Queued"
    with pytest.raises(BacktestError, match="only a Running run can be paused"):
        wb.backtests.pause(second)
    done = wb.backtests.wait(second, timeout=RUN_TIMEOUT_S)
    assert done.status == "Completed", done.error
    assert wb.backtests.get(first).finished_at <= done.started_at


# -- sweeps -------------------------------------------------------------------------------------
def _sweep_spec() -> SweepSpec:
    return SweepSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04",
                     end="2024-03-07", grid=SWEEP_GRID)


def _metrics_by_parameters(wb: Workbench, sweep_id: str) -> dict:
    info = wb.backtests.sweep(sweep_id)
    return {tuple(sorted(r.parameters.items())): wb.backtests.run_statistics(r) for r in info.runs}


def test_sweep_on_local_workers_and_on_dask_gives_identical_metrics(fresh_workbench):
    # Arrange
    wb = fresh_workbench(max_parallel=2)

    # Act 1: local worker processes.
    local_id = wb.backtests.submit_sweep(_sweep_spec(), principal=TESTER)
    local = wb.backtests.wait_sweep(local_id, timeout=RUN_TIMEOUT_S)

    # Act 2: the same sweep on a Dask LocalCluster.
    wb.backtests.attach_runtime(DaskRuntime(max_parallel=2))
    dask_id = wb.backtests.submit_sweep(_sweep_spec(), principal=TESTER, runtime="dask")
    on_dask = wb.backtests.wait_sweep(dask_id, timeout=RUN_TIMEOUT_S)

    # Assert: six runs each, all completed, the same parameter combinations and metrics.
    for info in (local, on_dask):
        assert len(info.runs) == 6
        assert info.status == "Completed", [(r.run_id, r.error) for r in info.runs]
    assert {r.runtime for r in local.runs} == {"local"}
    assert {r.runtime for r in on_dask.runs} == {"dask"}
    local_metrics = _metrics_by_parameters(wb, local_id)
    dask_metrics = _metrics_by_parameters(wb, dask_id)
    assert set(local_metrics) == {
        (("fast_ema_period", f), ("slow_ema_period", s)) for f in (5, 10, 20) for s in (30, 60)}
    assert local_metrics == dask_metrics
    assert all(m["num_trades"] > 0 for m in local_metrics.values())
    # Each run's CPU time and peak memory are its whole worker's: at least what the worker
    # reported of itself as it began writing results (a run shorter than the sampling period was
    # once measured at its first instant, 0.0 s of CPU).
    for run in local.runs + on_dask.runs:
        reported = json.loads((Path(run.run_folder) / "progress.json").read_text())
        assert run.cpu_seconds >= reported["cpu_seconds"] > 0, run
        assert run.memory_bytes >= reported["memory_bytes"] > 0, run

    # The leaderboard ranks by the chosen metric; the heatmap spans the two parameters.
    board = wb.backtests.leaderboard(local_id, "total_return")
    assert list(board["total_return"]) == sorted(board["total_return"], reverse=True)
    best = max(local_metrics.values(), key=lambda m: m["total_return"])
    assert board["total_return"].iloc[0] == best["total_return"]
    heat = wb.backtests.heatmap(local_id, "sharpe", "fast_ema_period", "slow_ema_period")
    assert list(heat.columns) == [5, 10, 20] and list(heat.index) == [30, 60]
    by_combo = {k: v["sharpe"] for k, v in local_metrics.items()}
    assert heat.loc[60, 10] == pytest.approx(
        by_combo[(("fast_ema_period", 10), ("slow_ema_period", 60))])
    with pytest.raises(BacktestError, match="not a metric"):
        wb.backtests.leaderboard(local_id, "no_such_metric")


def test_random_draws_respect_constraints_and_stop_sweep_cancels_the_rest(fresh_workbench):
    # Arrange
    wb = fresh_workbench(max_parallel=1)
    spec = SweepSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01", end="2024-12-31",
                     grid={"fast_ema_period": ["10..60:10"], "slow_ema_period": ["20..100:20"]},
                     random_draws=5, constraints=("slow_ema_period>=2",), seed=3)

    # Act
    sweep_id = wb.backtests.submit_sweep(spec)
    info = wb.backtests.sweep(sweep_id)
    _wait_for(lambda: wb.backtests.sweep(sweep_id).count("Running"), 60, "a run to start")
    stopped = wb.backtests.stop_sweep(sweep_id, principal=TESTER)

    # Assert: 5 distinct draws, every one with fast < slow (the template's constraint);
    # stopping cancels them all, queued and running.
    pairs = [(r.parameters["fast_ema_period"], r.parameters["slow_ema_period"]) for r in info.runs]
    assert len(pairs) == len(set(pairs)) == 5
    assert all(fast < slow for fast, slow in pairs)
    assert stopped.status == "Stopped"
    assert {r.status for r in stopped.runs} == {"Cancelled"}
    # The same seed draws the same runs.
    again = wb.backtests.submit_sweep(spec)
    repeat = [(r.parameters["fast_ema_period"], r.parameters["slow_ema_period"])
              for r in wb.backtests.sweep(again).runs]
    wb.backtests.stop_sweep(again)
    assert repeat == pairs


@pytest.mark.parametrize(("grid", "extra", "message"), [
    ({"fast_ema_period": ["50,60"], "slow_ema_period": ["10,20"]}, {}, "0 combinations"),
    ({"fast_ema_period": ["2..200"], "slow_ema_period": ["3..300"]}, {}, "limit is 10,000"),
    ({"fast_ema_period": ["20..10"]}, {}, "the range is empty"),
    ({"fast_ema_period": ["1..9:0"]}, {}, "the step must be positive"),
    ({"fast_ema_period": ["1"]}, {}, "must be >= 2"),
    ({"no_such": ["1"]}, {}, "unknown parameter"),
    ({"fast_ema_period": ["5,10"]}, {"random_draws": 20_000}, "between 1 and 10,000"),
    ({"fast_ema_period": ["5,10"]}, {"random_draws": 3}, "only 2 valid combinations"),
    ({"fast_ema_period": ["5,10"]}, {"constraints": ("fast_ema_period <",)}, "constraint[0]"),
])
def test_bad_sweeps_are_refused_before_anything_is_queued(fresh_workbench, grid, extra, message):
    wb = fresh_workbench()
    spec = SweepSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04",
                     end="2024-03-05", grid=grid, **extra)

    with pytest.raises(ValidationError) as raised:
        wb.backtests.submit_sweep(spec)

    assert message in str(raised.value)
    with wb.database.session() as session:
        assert session.scalar(select(func.count()).select_from(BacktestRunRow)) == 0
        assert session.scalar(select(func.count()).select_from(SweepRow)) == 0
    assert not wb.settings.runs_dir.exists() or not any(wb.settings.runs_dir.iterdir())


def test_unreachable_dask_scheduler_and_docker_are_clear_errors_and_lose_nothing(fresh_workbench):
    # Arrange: one run running, one queued behind it.
    wb = fresh_workbench(max_parallel=1)
    running = wb.backtests.submit(_long("running"))
    queued = wb.backtests.submit(_short("queued"))
    wait_for_status(wb, running, "Running")

    # Act / Assert: no scheduler listens on port 9.
    with pytest.raises(RuntimeUnavailableError, match="Cannot reach the Dask scheduler at "
                                                      "tcp://127.0.0.1:9"):
        DaskRuntime("tcp://127.0.0.1:9", connect_timeout=2)
    with pytest.raises(RuntimeUnavailableError, match="No Dask cluster is connected"):
        wb.backtests.submit_sweep(_sweep_spec(), runtime="dask")
    with pytest.raises(RuntimeUnavailableError, match="docker runtime is not attached"):
        wb.backtests.submit(_short("docker"), runtime="docker")

    # Nothing was queued by the failed attempts, nothing queued before was lost.
    with wb.database.session() as session:
        assert session.scalar(select(func.count()).select_from(BacktestRunRow)) == 2
    assert wb.backtests.get(running).status == "Running"
    assert wb.backtests.get(queued).status == "Queued"


# -- restart recovery ----------------------------------------------------------------------------
_SERVER_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from services.backtest.spec import BacktestSpec
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=sys.argv[1], catalog=sys.argv[2], max_parallel=1,
                        scheduler=True)
    def spec(start, end, fast, slow):
        return BacktestSpec(strategy="ema_cross", bar_type="%s", start=start, end=end,
                            parameters={"fast_ema_period": fast, "slow_ema_period": slow})
    ids = [wb.backtests.submit(spec("2024-01-01", "2024-12-31", 50, 200))]
    ids += [wb.backtests.submit(spec("2024-03-04", "2024-03-06", 10, 20)) for _ in range(2)]
    print(json.dumps(ids), flush=True)
    time.sleep(600)
""") % BTC_BARS


def test_restart_fails_interrupted_runs_and_continues_the_queue(tmp_path, sample_catalog_path,
                                                                 database_url):
    # Arrange: a "server" process with one slot submits three runs, then dies with its worker
    # (as on a machine restart).
    state = tmp_path / "state"
    server = subprocess.Popen([sys.executable, "-c", _SERVER_SCRIPT, str(state),
                               str(sample_catalog_path)], stdout=subprocess.PIPE, cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        running, *queued = json.loads(server.stdout.readline())
        database = Database(database_url or f"sqlite:///{state / 'workbench.db'}")
        # A run is claimed (Running) just before its worker starts and its pid is recorded.
        row = _wait_for(lambda: (r := _row_if(database, running, "Running")) is not None
                        and r.worker_pid is not None and r, 60, "the first run's worker to start")
        worker = row.worker_pid
        server.kill()
        server.wait()
        os.killpg(worker, signal.SIGKILL)
        _wait_for(lambda: not psutil.pid_exists(worker), 10, "the worker to die")
        assert [_row_if(database, q, "Queued") is not None for q in queued] == [True, True]
        database.dispose()

        # Act: the server starts again.
        wb = Workbench.open(state_dir=state, catalog=str(sample_catalog_path), max_parallel=1,
                            scheduler=True)
        try:
            interrupted = wb.backtests.wait(running, timeout=30)
            finals = [wb.backtests.wait(q, timeout=RUN_TIMEOUT_S) for q in queued]
        finally:
            close_workbench(wb)
    finally:
        if server.poll() is None:
            server.kill()

    # Assert: the interrupted run failed with the reason, the queued ones ran.
    assert interrupted.status == "Failed"
    assert interrupted.error.startswith("Interrupted") and "running" in interrupted.error
    assert not (Path(interrupted.run_folder) / "results.partial").exists()
    assert [f.status for f in finals] == ["Completed", "Completed"], [f.error for f in finals]


def _row_if(database: Database, run_id: str, status: str):
    with database.session() as session:
        row = session.get(BacktestRunRow, run_id)
        return row if row is not None and row.status == status else None


# -- a full disk ----------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 160 kB tmpfs: room for a run folder's spec and config, not for its results."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        skip_or_fail("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount_point)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_while_writing_results_fails_the_run_without_a_corrupt_folder(
        fresh_workbench, tiny_disk, tmp_path, database_url):
    # Arrange: run folders on the tiny disk, the database elsewhere.
    wb = fresh_workbench(max_parallel=1, state_dir=tiny_disk,
                         database_url=database_url or f"sqlite:///{tmp_path / 'workbench.db'}")

    # Act
    run_id = wb.backtests.submit(_short("disk full"))
    info = wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)

    # Assert
    assert info.status == "Failed"
    assert "disk" in info.error and "full" in info.error
    folder = Path(info.run_folder)
    assert not (folder / "results").exists()
    assert not (folder / "results.partial").exists()
    assert json.loads((folder / "spec.json").read_text())["label"] == "disk full"
    with pytest.raises(BacktestError, match="Failed"):
        wb.backtests.results(run_id)


# -- the CLI ----------------------------------------------------------------------------------------
def _cli(wb: Workbench, catalog, *args: str) -> int:
    from app.cli import main as cli

    return cli([*args, "--state-dir", str(wb.settings.state_dir), "--catalog", str(catalog)])


def test_cli_sweep_json_contract(fresh_workbench, sample_catalog_path, capsys):
    wb = fresh_workbench(max_parallel=2)

    code = _cli(wb, sample_catalog_path, "backtest", "sweep", "--strategy", "ema_cross",
                "--bar-type", BTC_BARS, "--start", "2024-03-04", "--end", "2024-03-06",
                "--grid", "fast_ema_period=5..20:5", "--grid", "slow_ema_period=10,30",
                "--random", "3", "--constraint", "fast_ema_period<slow_ema_period",
                "--max-parallel", "2", "--metric", "total_return", "--json")

    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert payload["sweep_id"].startswith("sweep-") and payload["status"] == "Completed"
    assert payload["runtime"] == "local" and len(payload["runs"]) == 3
    for run in payload["runs"]:
        assert set(run) >= {"run_id", "parameters", "status", "statistics"}
        assert run["status"] == "Completed"
        assert run["parameters"]["fast_ema_period"] < run["parameters"]["slow_ema_period"]
        assert "sharpe" in run["statistics"] and "total_return" in run["statistics"]
    returns = [r["statistics"]["total_return"] for r in payload["runs"]]
    assert returns == sorted(returns, reverse=True)
    assert payload["best_run_id"] == payload["runs"][0]["run_id"]
    assert "3/3 done" in captured.err  # the progress bar
    assert wb.backtests.sweep(payload["sweep_id"]).status == "Completed"


def test_cli_pause_resume_cancel_a_run_another_process_started(fresh_workbench,
                                                               sample_catalog_path, capsys):
    # Arrange: the run belongs to this workbench's service; the CLI is another service.
    wb = fresh_workbench(max_parallel=1)
    run_id = wb.backtests.submit(_long("cli controls"))
    _wait_for(lambda: _in_engine(wb, run_id), 120, "the run to reach its engine")
    pid = _worker_pid(wb, run_id)

    # Act / Assert
    assert _cli(wb, sample_catalog_path, "backtest", "pause", run_id) == 0
    assert f"Run {run_id}: Paused" in capsys.readouterr().out
    _wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 5, "SIGSTOP")
    assert _cli(wb, sample_catalog_path, "backtest", "resume", run_id) == 0
    assert f"Run {run_id}: Running" in capsys.readouterr().out
    _wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED, 5, "SIGCONT")
    assert _cli(wb, sample_catalog_path, "backtest", "cancel", run_id) == 0
    assert f"Run {run_id}: Cancelled" in capsys.readouterr().out
    assert wb.backtests.wait(run_id, timeout=30).status == "Cancelled"
    _wait_for(lambda: not psutil.pid_exists(pid)
              or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10, "the worker to end")
    assert _cli(wb, sample_catalog_path, "backtest", "pause", run_id) == 2
    assert "only a Running run can be paused" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--runtime", "docker"], "The Docker daemon is not reachable"),
    (["--runtime", "dask", "--dask-address", "tcp://127.0.0.1:9"], "Cannot reach the Dask scheduler"),
    (["--dask-address", "tcp://127.0.0.1:9"], "--dask-address needs --runtime dask"),
    (["--max-parallel", "0"], "--max-parallel must be at least 1"),
])
def test_cli_sweep_runtime_errors_are_one_line(fresh_workbench, sample_catalog_path, capsys,
                                               monkeypatch, extra, message):
    wb = fresh_workbench()
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/no-docker-here.sock")  # a dead daemon

    code = _cli(wb, sample_catalog_path, "backtest", "sweep", "--strategy", "ema_cross",
                "--bar-type", BTC_BARS, "--grid", "fast_ema_period=5,10", "--json", *extra)

    captured = capsys.readouterr()
    assert code == 2
    assert message in json.loads(captured.out)["error"]
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert wb.backtests.list_sweeps() == [] and wb.backtests.list_runs() == []
