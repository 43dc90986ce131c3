"""Every backtest runtime runs the worker with NautilusTrader 1.231's fixes, and a worker on another
NautilusTrader version refuses them, says so, and still completes the run.

Local, Dask and Docker all run ``python -m services.backtest.worker RUN_FOLDER``; the run's summary
records which fixes its worker installed (``nautilus_fixes``). The Docker test needs the engine
image built from this checkout (``nautilus-workbench engine build-image``; the image copies
``services/`` at build time), and skips without Docker (fails under CI).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from services.backtest.docker_runtime import DockerRuntime
from services.backtest.layout import WORKER_LOG
from services.backtest.runtime import DaskRuntime, LocalExecution, LocalRuntime
from services.backtest.spec import BacktestSpec
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, cancel_unfinished, docker_with_engine_image

pytestmark = pytest.mark.integration

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
BOTH_FIXES = ["analyzer_fix", "position_orders_fix"]
RUN_TIMEOUT_S = 240
# Three days of 1-minute bars with bracket orders: the resync path runs on every flattening.
SPEC = BacktestSpec(strategy="ema_cross_bracket", bar_type=BTC_BARS, start="2024-03-04",
                    end="2024-03-07", label="fixes")
FILL_COLUMNS = ["ts", "client_order_id", "side", "quantity", "price", "commission"]


def _open(state: Path, catalog: Path) -> Workbench:
    return Workbench.open(state_dir=state, catalog=str(catalog), max_parallel=1, scheduler=True)


@pytest.fixture
def workbenches():
    """``workbenches(state, catalog)`` opens a Workbench, cancelled and closed after the test."""
    opened: list[Workbench] = []

    def open_workbench(state: Path, catalog: Path) -> Workbench:
        opened.append(_open(state, catalog))
        return opened[-1]

    yield open_workbench
    for wb in opened:
        cancel_unfinished(wb)
        wb.backtests.close()
        wb.database.dispose()


def _completed(wb: Workbench, run_id: str):
    """``(results, worker log)`` of a run that must complete."""
    info = wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    assert info.status == "Completed", info.error
    return wb.backtests.results(run_id), (Path(info.run_folder) / WORKER_LOG).read_text()


def _fills(results) -> list[list[str]]:
    return results.fills[FILL_COLUMNS].astype(str).values.tolist()


def test_local_and_dask_workers_install_both_fixes(workbenches, tmp_path, sample_catalog_path):
    # Arrange
    wb = workbenches(tmp_path / "state", sample_catalog_path)
    wb.backtests.attach_runtime(DaskRuntime(max_parallel=1))

    # Act
    local, local_log = _completed(wb, wb.backtests.submit(SPEC))
    on_dask, dask_log = _completed(wb, wb.backtests.submit(SPEC, runtime="dask"))

    # Assert
    for results, log in ((local, local_log), (on_dask, dask_log)):
        assert results.summary["nautilus_fixes"] == BOTH_FIXES
        assert not any("NautilusTrader" in w for w in results.summary["warnings"])
        assert "WARNING" not in log
    assert len(local.fills) > 50
    assert _fills(on_dask) == _fills(local)


class OtherVersionRuntime(LocalRuntime):
    """Local workers that report NautilusTrader 1.232.0, as a worker after an upgrade would."""

    def start(self, run_id: str, folder: Path) -> LocalExecution:
        code = ("import sys, nautilus_trader; nautilus_trader.__version__ = '1.232.0'; "
                "from services.backtest import worker; sys.exit(worker.main(sys.argv[1:]))")
        with open(folder / WORKER_LOG, "wb") as log:
            process = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=REPO_ROOT,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        return LocalExecution(process)


def test_worker_on_another_version_refuses_the_fixes_says_so_and_completes(
        workbenches, tmp_path, sample_catalog_path):
    # Arrange: the same run with the fixes, for reference.
    wb = workbenches(tmp_path / "state", sample_catalog_path)
    fixed, _ = _completed(wb, wb.backtests.submit(SPEC))
    wb.backtests.attach_runtime(OtherVersionRuntime(max_parallel=1))

    # Act
    refused, log = _completed(wb, wb.backtests.submit(SPEC))

    # Assert: said in the worker log and in the run's warnings; the results are the same.
    assert refused.summary["nautilus_fixes"] == []
    expected = "NautilusTrader 1.232.0 is installed, but the workbench's fixes"
    assert [w for w in refused.summary["warnings"] if w.startswith(expected)] == [
        w for w in refused.summary["warnings"] if "NautilusTrader" in w]
    assert len([w for w in refused.summary["warnings"] if w.startswith(expected)]) == 1
    assert f"WARNING {expected}" in log
    assert "were not installed" in log
    assert _fills(refused) == _fills(fixed)
    assert refused.summary["final_balances"] == fixed.summary["final_balances"]


@pytest.mark.docker
def test_docker_worker_installs_both_fixes(workbenches, tmp_path, sample_catalog_path):
    # Arrange: the container's unprivileged user must be able to read the catalog.
    docker_with_engine_image()
    folder = Path(tempfile.mkdtemp(prefix="workbench-docker-catalog-"))
    folder.chmod(0o755)
    shutil.copytree(sample_catalog_path, folder / "catalog")
    try:
        wb = workbenches(tmp_path / "state", folder / "catalog")
        runtime = DockerRuntime(max_parallel=1)
        wb.backtests.attach_runtime(runtime)

        # Act
        local, _ = _completed(wb, wb.backtests.submit(SPEC))
        in_docker, log = _completed(wb, wb.backtests.submit(SPEC, runtime="docker"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    # Assert
    assert "nautilus_fixes" in in_docker.summary, (
        f"the engine image {runtime.image} predates the version-guarded fixes: rebuild it with "
        "`nautilus-workbench engine build-image`")
    assert in_docker.summary["nautilus_fixes"] == BOTH_FIXES
    assert "WARNING" not in log
    assert _fills(in_docker) == _fills(local)
