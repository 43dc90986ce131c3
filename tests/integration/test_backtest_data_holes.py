"""Backtests over data with holes: a range without bars is refused before queueing (service and
CLI), and a run across a hole carries a warning saying where it was.

The catalog is imported through the real importer: 1-minute bars of a 24/7 crypto perpetual on
2 January 2024 (00:01-02:00) and 5 January 2024 (00:01-06:00), nothing in between.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from app.cli import main as cli
from services.backtest import BacktestSpec
from services.backtest.sweep import SweepSpec
from services.catalog import CatalogService
from services.catalog.importer import ImportOptions
from services.catalog.writer import CatalogWriter
from services.db import BacktestRunRow
from services.errors import ValidationError
from services.workbench import Workbench
from tests.conftest import close_workbench

pytestmark = pytest.mark.integration

BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
REFUSAL = (f"no bars of {BARS} between 2024-01-03 00:00 and 2024-01-04 12:00 UTC; the data has "
           "2024-01-02 00:01\u20132024-01-02 02:00 and 2024-01-05 00:01\u20132024-01-05 06:00")


@pytest.fixture(scope="module")
def holey_catalog(tmp_path_factory):
    """The catalog folder, imported once for the module."""
    home = tmp_path_factory.mktemp("holes")
    index = pd.date_range("2024-01-02 00:01", "2024-01-05 06:00", freq="1min")
    index = index[(index <= "2024-01-02 02:00") | (index >= "2024-01-05 00:01")]
    wave = 42_000 + 300 * np.sin(np.arange(index.size) / 15)
    path = home / "bars.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": wave.round(1),
                  "high": (wave + 20).round(1), "low": (wave - 20).round(1),
                  "close": (wave + 5).round(1), "volume": 2.5}).to_csv(path, index=False)
    writer = CatalogWriter(CatalogService(str(home / "catalog")))
    writer.import_file(str(path), ImportOptions(instrument_id="BTCUSDT-PERP.BINANCE"))
    return home / "catalog"


@pytest.fixture
def workbench(tmp_path, holey_catalog, database_url):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(holey_catalog),
                        scheduler=True, database_url=database_url)
    yield wb
    close_workbench(wb)


def _rows(wb: Workbench) -> int:
    with wb.database.session() as session:
        return session.scalar(select(func.count()).select_from(BacktestRunRow))


def test_a_range_inside_a_hole_is_refused_before_queueing(workbench):
    # Arrange
    spec = BacktestSpec(strategy="ema_cross", bar_type=BARS, start="2024-01-03",
                        end="2024-01-04T12:00", parameters={"trade_size": "0.1"})
    sweep = SweepSpec(strategy="ema_cross", bar_type=BARS, start="2024-01-03",
                      end="2024-01-04T12:00", grid={"fast_ema_period": ["5", "10"]},
                      fixed={"trade_size": "0.1"})

    # Act
    with pytest.raises(ValidationError) as single:
        workbench.backtests.submit(spec)
    with pytest.raises(ValidationError) as swept:
        workbench.backtests.submit_sweep(sweep)

    # Assert: one line naming the range and the data's segments; nothing queued.
    assert str(single.value) == REFUSAL
    assert str(swept.value) == REFUSAL
    assert _rows(workbench) == 0
    assert not workbench.settings.runs_dir.exists() or not any(workbench.settings.runs_dir.iterdir())


def test_the_cli_refuses_it_with_the_same_line(holey_catalog, tmp_path, capsys, database_url):
    # Act
    code = cli(["backtest", "run", "--state-dir", str(tmp_path / "cli-state"),
                "--catalog", str(holey_catalog), "--strategy", "ema_cross", "--bar-type", BARS,
                "--start", "2024-01-03", "--end", "2024-01-04T12:00",
                "--param", "trade_size=0.1"])

    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {REFUSAL}\n"


def test_a_run_across_the_hole_completes_with_a_warning_naming_it(workbench):
    # Arrange: 2 January to 5 January, across 2d22h of open market without bars.
    spec = BacktestSpec(strategy="ema_cross", bar_type=BARS, start="2024-01-02",
                        end="2024-01-05T06:00", parameters={"trade_size": "0.1"})

    # Act
    run_id = workbench.backtests.submit(spec)
    info = workbench.backtests.wait(run_id, timeout=240)

    # Assert
    assert info.status == "Completed", info.error
    summary = json.loads((workbench.settings.runs_dir / run_id / "results" / "summary.json")
                         .read_text())
    assert (f"The data of {BARS} has a hole inside this run's range, where the market was open "
            "and no bars were stored: 2024-01-02 02:00\u20132024-01-05 00:01 (2d22h of open "
            "market). Nothing traded there, and indicators and open positions carried across "
            "it.") in summary["warnings"]
    # ... and the hole travels with the results, where the price chart breaks its line.
    assert summary["data_holes"] == [["2024-01-02T02:00:00+00:00", "2024-01-05T00:01:00+00:00"]]


def test_a_run_inside_one_segment_has_no_data_warning(workbench):
    # Act
    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BARS, start="2024-01-05", end="2024-01-05T06:00",
        parameters={"trade_size": "0.1"}))
    info = workbench.backtests.wait(run_id, timeout=240)

    # Assert
    assert info.status == "Completed", info.error
    summary = json.loads((workbench.settings.runs_dir / run_id / "results" / "summary.json")
                         .read_text())
    assert not [w for w in summary["warnings"] if "hole" in w]
    assert summary["data_holes"] == []
