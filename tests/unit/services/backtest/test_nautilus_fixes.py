"""Tests of services/backtest/nautilus_fixes.py: one version guard for both fixes.

``install()`` patches NautilusTrader for the whole process, so each check runs in a child process
that prints what it found as JSON; the pytest process is never patched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.backtest import nautilus_fixes

REPO_ROOT = Path(__file__).resolve().parents[4]

CHILD_SCRIPT = r'''
import json, sys

from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.system import kernel

from services.backtest import nautilus_fixes


def state():
    return {"kernel_cache": kernel.Cache.__name__,
            "analyzer_buffered": getattr(PortfolioAnalyzer._append_pnl_record,
                                         "_workbench_buffered", False)}


before = state()
outcomes = [nautilus_fixes.install(*sys.argv[1:]) for _ in range(2)]  # idempotent
print(json.dumps({"before": before, "after": state(),
                  "installed": [list(o.installed) for o in outcomes],
                  "warnings": [list(o.warnings) for o in outcomes]}))
'''


def _child(*version: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT, *version], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pinned_version_installs_both_fixes_once():
    # Act
    found = _child()

    # Assert
    assert found["before"] == {"kernel_cache": "Cache", "analyzer_buffered": False}
    assert found["after"] == {"kernel_cache": "LiveOrdersCache", "analyzer_buffered": True}
    assert found["installed"] == [["analyzer_fix", "position_orders_fix"]] * 2
    assert found["warnings"] == [[], []]


@pytest.mark.parametrize("version", ["1.232.0", "1.230.0", "2.0.0rc1"])
def test_other_version_installs_nothing_and_says_why(version):
    # Act
    found = _child(version)

    # Assert
    assert found["after"] == {"kernel_cache": "Cache", "analyzer_buffered": False}
    assert found["installed"] == [[], []]
    (warning,) = found["warnings"][0]
    assert warning.startswith(f"NautilusTrader {version} is installed")
    assert "were not installed" in warning and "nautilus_trader==1.231.0" in warning


def test_refusal_names_both_versions_and_the_way_out():
    # Act
    message = nautilus_fixes.refusal("1.232.0")

    # Assert
    assert "NautilusTrader 1.232.0 is installed" in message
    assert "written for 1.231.0 only" in message
    assert "large runs are slower" in message
    assert "Install nautilus_trader==1.231.0" in message


def test_pinned_version_is_the_one_the_project_and_the_engine_image_install():
    # Arrange
    import nautilus_trader

    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    dockerfile = (REPO_ROOT / "services" / "engine" / "Dockerfile.engine").read_text()

    # Assert: bumping NautilusTrader anywhere must come with a look at the fixes.
    pinned = [nautilus_fixes.PINNED_VERSION]
    found = set(re.findall(r'"nautilus_trader(?:\[ib\])?==([^"]+)"', pyproject))
    assert found == set(pinned) and len(re.findall(r'"nautilus_trader', pyproject)) >= 2
    requirement = r'NAUTILUS_REQUIREMENT="nautilus_trader\[ib\]==([^"]+)"'
    assert re.findall(requirement, dockerfile) == pinned
    assert nautilus_trader.__version__ == nautilus_fixes.PINNED_VERSION
