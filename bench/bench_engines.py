"""Engine control performance, in one run against the local Docker daemon:

1. bare `docker run` of the engine image until the node logs RUNNING, vs the workbench's start
   until the session is Running (target: ratio <= 1.5);
2. emergency stop until the container has exited (target <= 1 s);
3. status freshness: age of the newest engine snapshot the service holds (target <= 5 s);
4. monitor overhead with 10 paper engines: CPU of this process, which runs the monitor and
   follows every engine's log and stats streams (target <= 5 % of one core).

    python bench/bench_engines.py [--repeat 3] [--engines 10] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from services.catalog.sample import generate_sample_catalog
from services.engine.docker_api import DockerGateway
from services.engine.monitor import EngineMonitor
from services.engine.service import ERROR, RUNNING, STOPPED
from services.workbench import Workbench

PARAMS = {"replay_speed": 60, "fast_ema_period": 5, "slow_ema_period": 12}


def bare_docker_run(gateway: DockerGateway, wb: Workbench) -> float:
    """Seconds from `docker run` to the node's RUNNING log line, same image and node config."""
    config = wb.engines.validate("paper_trading", PARAMS)
    client = gateway.client()
    started = time.perf_counter()
    container = client.containers.run(
        wb.engines.image, detach=True, network_mode="none",
        environment={"WORKBENCH_NODE_CONFIG": json.dumps(config.node)},
        volumes={str(Path(wb.catalog.location).resolve()): {"bind": "/catalog", "mode": "ro"}})
    try:
        for chunk in client.api.logs(container.id, stream=True, follow=True):
            if b"TradingNode: RUNNING" in chunk:
                return time.perf_counter() - started
        raise RuntimeError("the engine exited before RUNNING")
    finally:
        container.remove(force=True)


def app_start(wb: Workbench) -> tuple[float, str]:
    started = time.perf_counter()
    info = wb.engines.start("paper_trading", PARAMS)
    info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR, STOPPED), timeout=120)
    if info.state != RUNNING:
        raise RuntimeError(f"engine did not run: {info.error}")
    return time.perf_counter() - started, info.session_id


def emergency_stop(wb: Workbench, gateway: DockerGateway, session_id: str) -> float:
    container_id = wb.engines.get(session_id).container_id
    started = time.perf_counter()
    wb.engines.emergency_stop(session_id)
    elapsed = time.perf_counter() - started
    assert gateway.client().containers.get(container_id).status == "exited"
    return elapsed


def freshness(wb: Workbench, session_id: str, seconds: float) -> float:
    """Worst age, over ``seconds``, of the newest snapshot the service holds for the engine."""
    worst = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = wb.engines.get(session_id).status
        if "ts" in status:
            worst = max(worst, time.time() - float(status["ts"]))
        time.sleep(0.1)
    return worst


def monitor_overhead(wb: Workbench, engines: int, window: float) -> dict:
    sessions = []
    for i in range(engines):
        info = wb.engines.start("paper_trading", {**PARAMS, "memory_limit_mb": 512},
                                name=f"bench-{i}")
        sessions.append(info.session_id)
    for session_id in sessions:
        wb.engines.wait_for(session_id, (RUNNING, ERROR), timeout=180)
    running = sum(wb.engines.get(s).state == RUNNING for s in sessions)
    monitor = EngineMonitor(wb.engines, interval=5).start()
    time.sleep(10)  # let start-up noise settle
    process = psutil.Process()
    cpu_before, wall_before = sum(process.cpu_times()[:2]), time.perf_counter()
    time.sleep(window)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    wall = time.perf_counter() - wall_before
    monitor.stop()
    metrics = sum(len(wb.engines.metrics(s)) for s in sessions)
    wb.engines.emergency_stop_all()
    return {"engines_running": running, "window_s": round(wall, 1),
            "cpu_percent_of_one_core": round(100 * cpu / wall, 2), "metric_rows": metrics}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    gateway = DockerGateway()
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        Path(tmp).chmod(0o755)
        catalog = Path(tmp) / "catalog"
        generate_sample_catalog(catalog)
        wb = Workbench.open(state_dir=Path(tmp) / "state", catalog=str(catalog))
        try:
            bare, app, kills, fresh = [], [], [], []
            for _ in range(args.repeat):
                bare.append(bare_docker_run(gateway, wb))
                seconds, session_id = app_start(wb)
                app.append(seconds)
                fresh.append(freshness(wb, session_id, 10))
                kills.append(emergency_stop(wb, gateway, session_id))
            overhead = monitor_overhead(wb, args.engines, args.window)
        finally:
            wb.engines.emergency_stop_all()
            wb.engines.cleanup()
            shutil.rmtree(Path(tmp) / "state", ignore_errors=True)
    ratio = statistics.median(app) / statistics.median(bare)
    result = {
        "bare_docker_run_to_running_s": [round(x, 2) for x in bare],
        "app_start_to_running_s": [round(x, 2) for x in app],
        "start_ratio_median": round(ratio, 2), "start_ratio_target": 1.5,
        "emergency_stop_s": [round(x, 3) for x in kills], "emergency_stop_target_s": 1.0,
        "status_freshness_worst_s": [round(x, 2) for x in fresh], "freshness_target_s": 5.0,
        "monitor": overhead, "monitor_target_percent": 5.0,
    }
    result["ok"] = (ratio <= 1.5 and max(kills) <= 1.0 and max(fresh) <= 5.0
                    and overhead["cpu_percent_of_one_core"] <= 5.0)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_engines.json").write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
