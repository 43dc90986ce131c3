"""Backtest workers run at the batch priority from their first instruction: their interpreter
start and imports (0.7 s of CPU each, two at once when a sweep starts) must not compete with
the server's sessions at its priority."""

from __future__ import annotations

import subprocess
import sys

import psutil

from services.backtest.priority import WORKER_NICENESS
from services.backtest.runtime import reap, spawn_worker
from tests.conftest import REPO_ROOT


def test_a_spawned_worker_is_at_batch_priority_before_it_runs_any_code(tmp_path):
    # Arrange: a run folder with nothing in it (the worker fails at once, once it gets going)
    folder = tmp_path / "run"
    folder.mkdir()

    # Act
    process = spawn_worker(folder)
    try:
        # Assert: lowered while the interpreter is still starting (it imports for ~0.5 s
        # before the worker's own code could lower it)
        assert psutil.Process(process.pid).nice() == WORKER_NICENESS
    finally:
        reap(process, timeout=60)


def _priority_after_lowering(start: int) -> int:
    code = ("import os; os.setpriority(os.PRIO_PROCESS, 0, %d);"
            "from services.backtest.priority import lower_own_priority; lower_own_priority();"
            "print(os.getpriority(os.PRIO_PROCESS, 0))" % start)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return int(done.stdout)


def test_a_worker_started_elsewhere_lowers_its_own_priority_but_never_raises_it():
    # Act / Assert: at the server's priority it goes down to the workers'; lower stays lower
    assert _priority_after_lowering(0) == WORKER_NICENESS
    assert _priority_after_lowering(WORKER_NICENESS + 5) == WORKER_NICENESS + 5
