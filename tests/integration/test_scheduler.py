"""One scheduler per installation, with real processes: readers start nothing, submitters never
exceed the capacity together, nobody fails a run another process supervises, and a restarted
scheduler adopts what its predecessor left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.backtest import BacktestSpec
from services.backtest.scheduler import live_lease
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, close_workbench, wait_for_status

pytestmark = pytest.mark.integration

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 240


def _spec(start: str, end: str, label: str, fast: int = 10, slow: int = 20) -> BacktestSpec:
    return BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start=start, end=end, label=label,
                        parameters={"fast_ema_period": fast, "slow_ema_period": slow})


SHORT = ("2024-03-04", "2024-03-06")
LONG = ("2024-01-01", "2024-12-31")


@pytest.fixture
def place(tmp_path, sample_catalog_path):
    """The state folder and catalog of one installation, and a way to run its CLI."""

    class Place:
        state = tmp_path / "state"
        catalog = sample_catalog_path

        def workbench(self, **kwargs) -> Workbench:
            return Workbench.open(state_dir=self.state, catalog=str(self.catalog), **kwargs)

        def cli(self, *args: str, **popen) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args, "--state-dir", str(self.state),
                 "--catalog", str(self.catalog)],
                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True, **popen)

    return Place()


def _workers_of(folders) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if any(str(f) in (p.info["cmdline"] or []) for f in folders)]


def test_reading_commands_start_nothing(place):
    # Arrange: two queued runs, no scheduler anywhere.
    wb = place.workbench()
    queued = [wb.backtests.submit(_spec(*SHORT, f"queued {i}")) for i in range(2)]

    # Act: what used to dispatch as a side effect
    listed = place.cli("backtest", "list", "--json")
    out, err = listed.communicate(timeout=60)
    time.sleep(1.0)

    # Assert
    assert listed.returncode == 0, err
    assert {r["run_id"]: r["status"] for r in json.loads(out)} == dict.fromkeys(queued, "Queued")
    assert [wb.backtests.get(r).status for r in queued] == ["Queued", "Queued"]
    assert _workers_of(Path(wb.backtests.get(r).run_folder) for r in queued) == []
    assert live_lease(wb.backtests.repository) is None
    wb.close()


def test_two_submitters_and_one_scheduler_never_run_two_at_once(place):
    # Arrange: the installation's scheduler with one slot, in its own process.
    scheduler = place.cli("scheduler", "--max-parallel", "1")
    wb = place.workbench()
    try:
        deadline = time.monotonic() + 60
        while live_lease(wb.backtests.repository) is None:
            assert time.monotonic() < deadline and scheduler.poll() is None, scheduler.stderr.read()
            time.sleep(0.1)
        busiest, sampling = [0], threading.Event()

        def sample():
            while not sampling.is_set():
                runs = wb.backtests.list_runs()
                busiest[0] = max(busiest[0], sum(r.status in ("Running", "Paused") for r in runs))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        # Act: two CLIs submit at the same moment and wait for their runs.
        submitters = [place.cli("backtest", "run", "--strategy", "ema_cross", "--bar-type",
                                BTC_BARS, "--start", SHORT[0], "--end", SHORT[1], "--label",
                                f"cli {i}", "--json") for i in range(2)]
        answers = [s.communicate(timeout=RUN_TIMEOUT_S) for s in submitters]
        sampling.set()
        sampler.join()

        # Assert
        assert [s.returncode for s in submitters] == [0, 0], [err for _, err in answers]
        runs = [json.loads(out) for out, _ in answers]
        assert [r["status"] for r in runs] == ["Completed", "Completed"]
        assert busiest[0] == 1
        lease = live_lease(wb.backtests.repository)
        assert lease is not None and lease.pid == scheduler.pid  # the CLIs did not take over
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(timeout=30)
        close_workbench(wb)


def test_backtest_run_without_a_scheduler_runs_its_own_run_and_hands_back(place):
    # Arrange: somebody else's queued run, no scheduler.
    wb = place.workbench()
    other = wb.backtests.submit(_spec(*SHORT, "someone else's"))

    # Act
    cli = place.cli("backtest", "run", "--strategy", "ema_cross", "--bar-type", BTC_BARS,
                    "--start", SHORT[0], "--end", SHORT[1], "--json")
    out, err = cli.communicate(timeout=RUN_TIMEOUT_S)

    # Assert: its own run completed; the other stays queued for the installation's scheduler.
    assert cli.returncode == 0, err
    assert json.loads(out)["status"] == "Completed"
    assert wb.backtests.get(other).status == "Queued"
    assert live_lease(wb.backtests.repository) is None
    wb.close()


def test_a_restarted_scheduler_adopts_the_worker_its_predecessor_left(place):
    # Arrange: a scheduler process runs a long run with one slot; a second run waits.
    wb = place.workbench()
    running = wb.backtests.submit(_spec(*LONG, "left running", 50, 200))
    queued = wb.backtests.submit(_spec(*SHORT, "waits"))
    scheduler = place.cli("scheduler", "--max-parallel", "1")
    try:
        info = wait_for_status(wb, running, "Running")
        deadline = time.monotonic() + 60
        while not wb.backtests.get(running).phase == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        worker = _workers_of([info.run_folder])
        assert len(worker) == 1

        # Act: the scheduler dies (its worker runs on in its own session); a new one starts.
        os.killpg(scheduler.pid, signal.SIGKILL)
        scheduler.wait(timeout=10)
        successor = place.workbench(max_parallel=1, scheduler=True)
        try:
            assert successor.backtests.get(running).status == "Running"
            assert successor.backtests.get(queued).status == "Queued"  # the slot is taken
            finals = [successor.backtests.wait(r, timeout=RUN_TIMEOUT_S) for r in (running,
                                                                                    queued)]
        finally:
            close_workbench(successor)

        # Assert: the adopted run completed with its results, then the queued one ran.
        assert [f.status for f in finals] == ["Completed", "Completed"], [f.error for f in finals]
        assert finals[1].started_at >= finals[0].finished_at
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
        wb.close()


@pytest.mark.timeout(600)
def test_opening_a_workbench_elsewhere_leaves_a_dask_run_running(place):
    # Arrange: this process supervises a run on a Dask LocalCluster.
    from services.backtest.runtime import DaskRuntime

    wb = place.workbench(scheduler=True)
    wb.backtests.attach_runtime(DaskRuntime(None, max_parallel=1))
    try:
        run_id = wb.backtests.submit(_spec(*LONG, "on dask", 50, 200),
                                     runtime="dask")
        wait_for_status(wb, run_id, "Running")

        # Act: a notebook opens the workbench, lists runs, and even starts a scheduler (standby).
        notebook = subprocess.run([sys.executable, "-c", (
            "import sys, time; from services.workbench import Workbench\n"
            "wb = Workbench.open(state_dir=sys.argv[1], catalog=sys.argv[2], scheduler=True)\n"
            "print(wb.backtests.get(sys.argv[3]).status); time.sleep(2)\n"
            "print(wb.backtests.get(sys.argv[3]).status); wb.close()"),
            str(place.state), str(place.catalog), run_id],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        final = wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    finally:
        close_workbench(wb)

    # Assert
    assert notebook.returncode == 0, notebook.stderr
    assert notebook.stdout.split() == ["Running", "Running"]
    assert final.status == "Completed", final.error
