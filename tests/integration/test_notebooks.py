"""Every notebook in notebooks/ executes top to bottom and shows real results."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


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
