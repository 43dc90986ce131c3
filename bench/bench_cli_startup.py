"""CLI start-up (issue 15): ``--help`` <= 0.5 s wall on an idle machine, median of 10; the quick
commands (``engine list``, ``backtest list``) timed alike, and the interpreter alone for
reference (what no CLI can go below).

    python bench/bench_cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"python_alone": None, "help": ["--help"], "engine_list": ["engine", "list"],
            "backtest_list": ["backtest", "list"]}
TARGET_HELP_S = 0.5


def _wall(args: list[str] | None, env: dict) -> float:
    argv = [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-m", "app.cli",
                                                                *args]
    started = time.perf_counter()
    subprocess.run(argv, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        env = {**os.environ, "WORKBENCH_STATE_DIR": str(Path(folder) / "state")}
        env.pop("DATABASE_URL", None)
        _wall(["engine", "list"], env)  # creates and migrates the database once
        samples = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):  # interleaved: load from elsewhere hits every command alike
            for name, command in COMMANDS.items():
                samples[name].append(_wall(command, env))
    result = {"repeat": args.repeat, "load_average_1m": os.getloadavg()[0],
              **{f"{name}_median_s": round(statistics.median(v), 3) for name, v in samples.items()},
              "target_help_s": TARGET_HELP_S}
    result["passed"] = result["help_median_s"] <= TARGET_HELP_S
    out = PROJECT_ROOT / "bench" / "results" / "cli_startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
