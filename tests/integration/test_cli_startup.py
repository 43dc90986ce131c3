"""Quick CLI commands start without importing what they do not need (issue 15): listing
engines or runs and an emergency stop must answer at once, even on a loaded machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("pandas", "nautilus_trader", "panel", "holoviews", "bokeh", "alembic")

PROBE = f"""
import json, sys
from app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # argparse's --help
    code = e.code
print(json.dumps({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


@pytest.fixture
def cli_env(tmp_path, database_url) -> dict:
    """A fresh installation, migrated by a first command (which needs Alembic, once)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "WORKBENCH_STATE_DIR": str(tmp_path / "state")}
    if database_url:
        env["DATABASE_URL"] = database_url
    subprocess.run([sys.executable, "-m", "app.cli", "engine", "list"], cwd=REPO_ROOT, env=env,
                   capture_output=True, timeout=120, check=True)
    return env


def _heavy_modules_after(args: list[str], env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO_ROOT, text=True,
                          capture_output=True, timeout=60, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["engine", "list"], ["backtest", "list"],
                                  ["engine", "emergency-stop", "--help"]],
                         ids=" ".join)
def test_quick_commands_import_neither_pandas_nor_nautilus_trader(cli_env, args):
    outcome = _heavy_modules_after(args, cli_env)
    assert outcome["code"] == 0
    assert outcome["loaded"] == []


def test_an_emergency_stop_of_an_unknown_engine_stays_light_and_says_so(cli_env):
    outcome = _heavy_modules_after(["engine", "emergency-stop", "nope"], cli_env)
    assert outcome["code"] != 0
    assert outcome["loaded"] == []
