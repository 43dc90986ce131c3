"""One monitor per server process: follows engines, records metrics, survives Docker outages.

Every ``interval`` seconds it reattaches to running engine containers (after a restart, or after
the daemon comes back), settles sessions whose container vanished, and writes one resource sample
per engine into engine_metrics. While the daemon is unreachable it retries with backoff and says
so in ``state`` (the UI shows it; nothing else waits on Docker).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from services.engine.service import EngineService
from services.errors import WorkbenchError

log = logging.getLogger("nautilus_workbench.engines")
BACKOFF = (5, 10, 20, 40, 60)
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class MonitorState:
    docker_reachable: bool | None = None
    detail: str = "not polled yet"
    last_poll: float | None = None
    failures: int = 0
    next_poll_in: float = 0.0
    followed: int = 0


class EngineMonitor:
    def __init__(self, engines: EngineService, interval: float = 5.0) -> None:
        self.engines = engines
        self.interval = interval
        self.state = MonitorState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = float("-inf")

    def start(self) -> EngineMonitor:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="engine-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def poll_once(self) -> MonitorState:
        """Reattach, reconcile and record one sample; never raises."""
        try:
            reachable, detail = self.engines.docker.ping()
            if not reachable:
                raise WorkbenchError(detail)
            self.engines.reattach()
            self.engines.record_metrics()
            if time.monotonic() - self._pruned >= PRUNE_EVERY_S:
                self.engines.prune_metrics()
                self._pruned = time.monotonic()
            self.state = MonitorState(True, "ok", time.time(), 0, self.interval,
                                      len(self.engines.followed_sessions))
        except WorkbenchError as e:
            failures = self.state.failures + 1
            delay = BACKOFF[min(failures - 1, len(BACKOFF) - 1)]
            if failures == 1:
                log.warning("engine monitor: %s", e)
            self.state = replace(self.state, docker_reachable=False, detail=str(e),
                                 last_poll=time.time(), failures=failures, next_poll_in=delay)
        except Exception:  # a bug must not end monitoring of live engines
            log.exception("engine monitor poll failed")
            self.state = replace(self.state, detail="internal error; see the server log",
                                 last_poll=time.time(), next_poll_in=self.interval)
        return self.state

    def _run(self) -> None:
        while not self._stop.is_set():
            state = self.poll_once()
            self._stop.wait(state.next_poll_in or self.interval)
