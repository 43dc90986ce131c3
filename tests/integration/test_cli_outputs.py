"""Every CLI command that writes a file answers an unwritable path with one line and exit code
2, and leaves nothing half-written behind."""

from __future__ import annotations

import pytest

from app.cli import main as cli
from services.backtest import BacktestSpec

pytestmark = pytest.mark.integration

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def completed(workbench):
    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=AAPL_BARS, start="2024-06-03", end="2024-06-05",
        label="cli outputs"))
    assert workbench.backtests.wait(run_id, timeout=240).status == "Completed"
    return run_id


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


def _commands(run_id: str, target: str) -> list[list[str]]:
    return [
        ["catalog", "check", AAPL_BARS, "--start", "2024-06-03", "--end", "2024-06-04",
         "--report", f"{target}/offenders.csv"],
        ["catalog", "check", AAPL_BARS, "--start", "2024-06-03", "--end", "2024-06-04",
         "--report", f"{target}/offenders.json"],
        ["catalog", "export", AAPL_BARS, "--start", "2024-06-03", "--end", "2024-06-04",
         "-o", f"{target}/bars.csv"],
        ["catalog", "export", AAPL_BARS, "--start", "2024-06-03", "--end", "2024-06-04",
         "-o", f"{target}/bars.parquet"],
        ["report", run_id, "-o", f"{target}/report.html"],
        ["report", run_id, "-o", f"{target}/../report-ok.html", "--trades",
         f"{target}/trades.csv"],
        ["report", run_id, "-o", f"{target}/../report-ok2.html", "--equity",
         f"{target}/equity.parquet"],
    ]


@pytest.mark.parametrize("where", ["missing folder", "read-only folder"])
def test_unwritable_outputs_are_one_line_and_exit_2(workbench, sample_catalog_path, completed,
                                                    tmp_path, read_only, capsys, where):
    if where == "read-only folder":
        import os

        if os.geteuid() == 0:
            # root writes into any folder: use a path under a file instead, which nobody can.
            (tmp_path / "a-file").write_text("")
            target = str(tmp_path / "a-file")
        else:
            target = str(read_only)
    else:
        target = str(tmp_path / "no" / "such" / "folder")
    base = ["--state-dir", str(workbench.settings.state_dir), "--database-url",
            workbench.settings.database_url, "--catalog", str(sample_catalog_path)]

    for command in _commands(completed, target):
        # Act
        code = cli([*command, *base])
        out, err = capsys.readouterr()

        # Assert
        assert code == 2, (command, out, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (command, err)
        assert "Traceback" not in err + out
        assert "Cannot write" in lines[0] or "cannot write" in lines[0].lower(), lines[0]
    # Nothing was written before the refusal (the report's HTML waits for the other files).
    assert not list(tmp_path.glob("report-ok*.html"))
