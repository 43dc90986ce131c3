"""A worker that runs out of disk space while writing results leaves no results folder, says
so in error.json when it can, and exits with the disk-full code when it cannot."""

from __future__ import annotations

import errno
import json

import pytest

from services.backtest import worker
from services.backtest.layout import ERROR_FILE, PARTIAL, RESULTS


def _fill_disk_while_writing(folder):
    # What pyarrow raises when the device is full, after part of the results exists.
    (folder / PARTIAL).mkdir()
    (folder / PARTIAL / "fills.parquet").write_bytes(b"PAR1 half a file")
    raise OSError(errno.ENOSPC, "Error writing bytes to file: No space left on device")


def test_disk_full_removes_partial_results_and_reports_it(tmp_path, monkeypatch):
    # Arrange
    monkeypatch.setattr(worker, "run", _fill_disk_while_writing)

    # Act
    code = worker.main([str(tmp_path)])

    # Assert
    assert code == worker.EXIT_DISK_FULL
    assert not (tmp_path / PARTIAL).exists() and not (tmp_path / RESULTS).exists()
    assert json.loads((tmp_path / ERROR_FILE).read_text())["error"] == worker.DISK_FULL_MESSAGE


def test_disk_full_exit_code_survives_an_unwritable_error_file(tmp_path, monkeypatch):
    # Arrange: not even error.json can be written (the disk stays full).
    monkeypatch.setattr(worker, "run", _fill_disk_while_writing)
    (tmp_path / ERROR_FILE).mkdir()  # writing it as a file fails with an OSError

    # Act
    code = worker.main([str(tmp_path)])

    # Assert: the exit code alone tells the service what happened.
    assert code == worker.EXIT_DISK_FULL
    assert not (tmp_path / PARTIAL).exists()


def test_other_failures_keep_their_message(tmp_path, monkeypatch):
    def broken(folder):
        raise RuntimeError("no data")

    monkeypatch.setattr(worker, "run", broken)

    assert worker.main([str(tmp_path)]) == 1
    assert json.loads((tmp_path / ERROR_FILE).read_text())["error"] == "RuntimeError: no data"


@pytest.mark.parametrize("code", [worker.EXIT_DISK_FULL])
def test_service_explains_the_disk_full_exit_code_without_an_error_file(tmp_path, code):
    from services.backtest.scheduler import failure_reason

    assert failure_reason(tmp_path, code) == worker.DISK_FULL_MESSAGE
