"""An actor that reports how far a backtest has got, in simulated time, to a file.

It wakes on a timer in simulated time (once per simulated hour), so its cost does not grow
with the number of bars, and writes at most twice a second of wall time. Besides the simulated
time reached it reports the messages NautilusTrader's message bus has carried so far (bars,
orders, fills, ...: the "events processed") and the worker's CPU time and peak memory.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig

SAMPLE_EVERY_S = 2.0
SAMPLES_KEPT = 60  # two minutes of active time at most: the estimate uses the last one
PAUSED_CPU_SHARE = 0.05  # less CPU than this share of the wall time: the process was stopped


class ProgressReporterConfig(ActorConfig, frozen=True):
    progress_file: str
    start_ns: int
    end_ns: int


class ProgressReporter(Actor):
    def __init__(self, config: ProgressReporterConfig) -> None:
        super().__init__(config)
        self._path = Path(config.progress_file)
        self._span = max(config.end_ns - config.start_ns, 1)
        self._last_write = 0.0

    def on_start(self) -> None:
        self._running_since = time.time()
        # (active seconds, fraction done) for the ETA (services/backtest/eta.py). Active time
        # leaves out pauses: a stopped process uses no CPU, so a wall-time gap without CPU time
        # is not counted.
        self._samples: deque[tuple[float, float]] = deque(maxlen=SAMPLES_KEPT)
        self._active = 0.0
        self._last_wall, self._last_cpu = time.monotonic(), time.process_time()
        self.clock.set_timer("workbench-progress", timedelta(hours=1), callback=self._on_timer)

    def _on_timer(self, event) -> None:
        now = time.monotonic()
        if now - self._last_write < 0.5:
            return
        self._last_write = now
        fraction = min(max((event.ts_event - self.config.start_ns) / self._span, 0.0), 1.0)
        self._sample(now, fraction)
        bus = self.msgbus
        events = bus.pub_count + bus.sent_count + bus.req_count + bus.res_count
        write_progress(self._path, "running", fraction, sim_time_ns=event.ts_event, events=events,
                       running_since=self._running_since, samples=list(self._samples))

    def _sample(self, now: float, fraction: float) -> None:
        cpu = time.process_time()
        wall, used = now - self._last_wall, cpu - self._last_cpu
        self._active += wall if used >= PAUSED_CPU_SHARE * wall else used
        self._last_wall, self._last_cpu = now, cpu
        if not self._samples or self._active - self._samples[-1][0] >= SAMPLE_EVERY_S:
            self._samples.append((round(self._active, 3), fraction))

    def on_stop(self) -> None:
        self.clock.cancel_timers()


def write_progress(path: Path, phase: str, fraction: float, sim_time_ns: int | None = None,
                   events: int | None = None, running_since: float | None = None,
                   samples: list[tuple[float, float]] | None = None) -> None:
    """Atomically replace the progress file (readers never see half a JSON document)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "phase": phase, "fraction": fraction, "sim_time_ns": sim_time_ns, "events": events,
        "wall_time": time.time(), "running_since": running_since, "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "memory_bytes": usage.ru_maxrss * 1024,  # Linux reports kilobytes
        "samples": samples or [],
    }))
    os.replace(tmp, path)


def read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
