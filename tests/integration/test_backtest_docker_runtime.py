"""Backtests on the docker runtime: the worker in a container of the engine image gives the same
results as a local worker, and can be paused (no CPU), resumed and cancelled.

Needs Docker and the engine image (skips without them, fails under CI).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from services.backtest.docker_runtime import DockerRuntime
from services.backtest.spec import BacktestSpec
from services.workbench import Workbench
from tests.conftest import close_workbench, docker_with_engine_image

pytestmark = [pytest.mark.integration, pytest.mark.docker]
BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def docker_wb(sample_catalog_path, tmp_path):
    gateway = docker_with_engine_image()
    # The container's unprivileged user must be able to read the catalog.
    folder = Path(tempfile.mkdtemp(prefix="workbench-docker-catalog-"))
    folder.chmod(0o755)
    shutil.copytree(sample_catalog_path, folder / "catalog")
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(folder / "catalog"),
                        scheduler=True)
    wb.backtests.attach_runtime(DockerRuntime(max_parallel=2))
    yield wb, gateway
    close_workbench(wb)
    shutil.rmtree(folder, ignore_errors=True)


def _spec(start: str, end: str, fast: int, slow: int) -> BacktestSpec:
    return BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start=start, end=end,
                        parameters={"fast_ema_period": fast, "slow_ema_period": slow})


def test_docker_and_local_workers_give_identical_results(docker_wb):
    wb, _ = docker_wb
    spec = _spec("2024-03-04", "2024-03-07", 10, 30)
    local = wb.backtests.wait(wb.backtests.submit(spec), timeout=240)
    docker = wb.backtests.wait(wb.backtests.submit(spec, runtime="docker"), timeout=240)
    assert (local.status, docker.status) == ("Completed", "Completed"), docker.error
    assert docker.runtime == "docker"
    local_stats = json.loads((Path(local.run_folder) / "results" / "statistics.json").read_text())
    docker_stats = json.loads((Path(docker.run_folder) / "results" / "statistics.json")
                              .read_text())
    # Same trades to the cent; derived ratios may differ in the last bit (the image's Python and
    # numpy builds are not the host's).
    assert docker_stats.keys() == local_stats.keys()
    for key, value in local_stats.items():
        if isinstance(value, float):
            assert docker_stats[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        else:
            assert docker_stats[key] == value, key
    assert local_stats["num_trades"] > 0
    results = [wb.backtests.results(r.run_id) for r in (local, docker)]
    columns = ["ts", "side", "quantity", "price", "commission"]
    assert len(results[0].fills) > 0
    assert (results[0].fills[columns].astype(str).values.tolist()
            == results[1].fills[columns].astype(str).values.tolist())


def test_docker_run_pauses_without_cpu_resumes_and_cancels(docker_wb):
    wb, gateway = docker_wb
    run_id = wb.backtests.submit(_spec("2024-01-01", "2024-12-31", 50, 200), runtime="docker")
    deadline = time.monotonic() + 120
    while not (wb.backtests.get(run_id).events or 0):
        assert time.monotonic() < deadline, "the docker run never reported progress"
        assert not wb.backtests.get(run_id).is_final, wb.backtests.get(run_id).error
        time.sleep(0.5)
    container = gateway.client().containers.get(f"nautilus-backtest-{run_id}")

    wb.backtests.pause(run_id)
    container.reload()
    assert container.status == "paused"
    assert wb.backtests.get(run_id).status == "Paused"
    events = wb.backtests.get(run_id).events
    time.sleep(3)
    assert wb.backtests.get(run_id).events == events  # frozen: no progress while paused

    wb.backtests.resume(run_id)
    container.reload()
    assert container.status == "running"
    wb.backtests.cancel(run_id)
    final = wb.backtests.wait(run_id, timeout=60)
    assert final.status == "Cancelled"
    assert not (Path(final.run_folder) / "results").exists()
