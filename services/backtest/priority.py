"""The CPU priority of backtest workers (standard library only: the engine image's worker
imports it too)."""

from __future__ import annotations

import os

# Backtests are batch work: at a lower CPU priority they still get every idle cycle, but a busy
# machine keeps answering the server's sessions (the emergency stop) and its engines.
WORKER_NICENESS = 10


def lower_own_priority() -> None:
    """The calling process at the workers' batch priority (a worker started by other means:
    a Dask worker's task, a container); never raised back from a lower one."""
    if os.getpriority(os.PRIO_PROCESS, 0) < WORKER_NICENESS:
        os.setpriority(os.PRIO_PROCESS, 0, WORKER_NICENESS)
