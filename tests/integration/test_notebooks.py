"""Every notebook in notebooks/ executes top to bottom and shows real results."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from services.workbench import Workbench
from tests.conftest import REPO_ROOT, docker_with_engine_image

pytestmark = pytest.mark.integration

ENGINE_NOTEBOOK = REPO_ROOT / "notebooks" / "paper_engine.ipynb"
DEPLOYMENT_NOTEBOOK = REPO_ROOT / "notebooks" / "deployment.ipynb"
# Backtest notebooks; the engine notebooks need Docker and have their own tests below.
NOTEBOOKS = sorted(p for p in (REPO_ROOT / "notebooks").glob("*.ipynb")
                   if p not in (ENGINE_NOTEBOOK, DEPLOYMENT_NOTEBOOK))


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_results(path, tmp_path, sample_catalog_path, monkeypatch):
    # Arrange: the kernel inherits the environment; point the workbench at throwaway state.
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WORKBENCH_CATALOG", str(sample_catalog_path))
    nb = nbformat.read(path, as_version=4)

    # Act
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    # Assert: no error output, the run completed, and its statistics are shown.
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = _outputs_text(nb)
    assert "Completed" in text
    assert "total_return" in text and "sharpe" in text
    assert os.listdir(tmp_path / "state" / "runs"), "the notebook's run left no run folder"


def test_paper_engine_notebook_starts_watches_and_stops_an_engine(tmp_path, sample_catalog_path,
                                                                  monkeypatch):
    docker_with_engine_image()
    # The engine container's unprivileged user must be able to read the catalog.
    folder = Path(tempfile.mkdtemp(prefix="workbench-notebook-catalog-"))
    folder.chmod(0o755)
    shutil.copytree(sample_catalog_path, folder / "catalog")
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WORKBENCH_CATALOG", str(folder / "catalog"))
    nb = nbformat.read(ENGINE_NOTEBOOK, as_version=4)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        wb = Workbench.open()
        wb.engines.emergency_stop_all()  # nothing outlives the test, whatever happened
        wb.engines.cleanup()
        shutil.rmtree(folder, ignore_errors=True)

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = _outputs_text(nb)
    assert "notebook-paper Running nautilus-engine-" in text
    fills = int(re.search(r"fills: (\d+)", text).group(1))
    assert fills >= 2
    assert re.search(r"order O-\S+-MANUAL-1 FILLED at [0-9.]+", text)
    assert "position LONG 0.01 realized -" in text
    assert "trading HALTED | positions still open: [] | orders still open: []" in text
    assert "notebook-paper Stopped exit code 0" in text
    assert "engine.stop Running -> Stopping accepted" in text


def _engine_catalog(sample_catalog_path) -> Path:
    """A copy of the sample catalog the engine container's unprivileged user can read."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-notebook-catalog-"))
    folder.chmod(0o755)
    shutil.copytree(sample_catalog_path, folder / "catalog")
    return folder / "catalog"


def test_deployment_notebook_takes_a_backtest_to_paper_and_measures_its_drift(
        tmp_path, sample_catalog_path, monkeypatch):
    docker_with_engine_image()
    catalog = _engine_catalog(sample_catalog_path)
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WORKBENCH_CATALOG", str(catalog))
    nb = nbformat.read(DEPLOYMENT_NOTEBOOK, as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        wb = Workbench.open()
        wb.engines.emergency_stop_all()  # nothing outlives the test, whatever happened
        wb.engines.cleanup()
        shutil.rmtree(catalog.parent, ignore_errors=True)

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = _outputs_text(nb)
    assert re.search(r"backtest \S+ Completed", text)
    assert re.search(r"version [0-9a-f]{12} created \| parameters: .*'fast_ema_period': 5", text)
    assert "again: False" in text  # the same content is the same version
    assert "gate backtest passed" in text
    assert re.search(r"request pr-\S+ Approved \(1 of 1 approvals\)", text)
    assert re.search(r"engine paper-ema_cross-[0-9a-f]+ Running", text)
    assert re.search(r"deployment dep-\S+ Stopped - stopped by ", text)
    # Deterministic replay: the engine's fills are the backtest's (hand-checked in the drift
    # integration test); returns correlate.
    fills = re.search(r"fills engine (\d+) / backtest (\d+): matched (\d+), missed (\d+), "
                      r"extra (\d+)", text)
    engine_fills, backtest_fills, matched, missed, extra = map(int, fills.groups())
    assert engine_fills >= 2 and engine_fills == backtest_fills == matched
    assert (missed, extra) == (0, 0)
    assert float(re.search(r"correlation (-?[0-9.]+)", text).group(1)) >= 0.9
    assert "within bounds" in text
    viewer = next(c for c in nb.cells if c.source == "DeploymentPipeline(workbench=wb)")
    assert any(o.get("output_type") in ("display_data", "execute_result")
               for o in viewer.outputs), "the DeploymentPipeline cell showed nothing"
