"""The catalog CLI contract (import, check, export, delete, convert) over a temporary catalog,
a real SQLite database and real NautilusTrader writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import select

from app.cli import main as cli
from services.db import AuditEntry
from services.identity.principal import Principal
from services.workbench import Workbench

BTC = "BTCUSDT-PERP.BINANCE"
KEY = f"{BTC}-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def run(tmp_path, capsys):
    """``run("catalog", "check", ...)`` -> (exit code, stdout, stderr) over a temporary catalog."""
    base = ["--state-dir", str(tmp_path / "state"), "--catalog", str(tmp_path / "catalog")]

    def invoke(*args: str):
        code = cli([*args, *base])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def csv_file(tmp_path):
    index = pd.date_range("2024-01-02 00:01", periods=240, freq="1min")
    index = index.delete(range(100, 130))  # a 30-minute hole
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 100.0,
                          "high": 101.0, "low": 99.0, "close": 100.5, "volume": 2.0})
    path = tmp_path / "bars.csv"
    frame.drop(index=5).to_csv(path, index=False)  # and a one-bar hole
    return path


def test_import_check_export_delete_round(run, csv_file, tmp_path):
    # import --json
    code, out, err = run("catalog", "import", str(csv_file), "--instrument-id", BTC,
                         "--instrument-type", "crypto-perp", "--bar-spec", "1-MINUTE-LAST", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["series"], result["rows"], result["instrument_created"]) == (KEY, 209, True)
    assert result["quality"]["gap_count"] == 2  # the hole and the dropped row

    # check --json: the contract's keys
    code, out, _ = run("catalog", "check", KEY, "--calendar", "24/7", "--json")
    report = json.loads(out)
    assert code == 0
    assert {"gaps", "duplicates", "out_of_order", "ohlc_errors", "outliers"} <= set(report)
    assert report["gaps"][1] == {"start": "2024-01-02T01:40:00+00:00",
                                 "end": "2024-01-02T02:10:00+00:00", "missing": 30}
    assert (report["duplicates"], report["out_of_order"], report["ohlc_errors"]) == (0, 0, 0)

    # export -o
    out_file = tmp_path / "slice.csv"
    code, out, _ = run("catalog", "export", KEY, "--start", "2024-01-02T00:10", "--end",
                       "2024-01-02T00:19", "-o", str(out_file))
    assert code == 0 and "Wrote 10 rows" in out
    assert len(pd.read_csv(out_file)) == 10

    # delete without --yes: refused, nothing changed
    code, _, err = run("catalog", "delete", KEY, "--start", "2024-01-02T00:10")
    assert code == 2 and "confirm it (--yes" in err
    code, out, _ = run("catalog", "delete", KEY, "--start", "2024-01-02T00:10", "--end",
                       "2024-01-02T00:19", "--yes", "--json")
    assert code == 0 and json.loads(out)["rows_deleted"] == 10

    # audited
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(tmp_path / "catalog"))
    try:
        with wb.database.session() as session:
            actions = [(e.action, e.actor, e.outcome) for e in session.scalars(select(AuditEntry))]
    finally:
        wb.database.dispose()
    local = Principal.local().name  # the CLI without a token acts as the local operator
    assert actions == [("catalog.import", local, "ok"), ("catalog.export", local, "ok"),
                       ("catalog.delete", local, "ok")]


def test_check_report_file_and_convert(run, csv_file, tmp_path):
    run("catalog", "import", str(csv_file), "--instrument-id", BTC)
    code, _, _ = run("catalog", "check", KEY, "--report", str(tmp_path / "r.csv"))
    assert code == 0 and list(pd.read_csv(tmp_path / "r.csv")["check"]) == ["gap", "gap"]
    code, out, _ = run("catalog", "convert", KEY, "--bar-spec", "15-MINUTE-LAST", "--json")
    assert code == 0 and json.loads(out)["series"] == f"{BTC}-15-MINUTE-LAST-EXTERNAL"


@pytest.mark.parametrize(("args", "message"), [
    (["catalog", "check", "NOPE-1-MINUTE-LAST-EXTERNAL"], "No series 'NOPE-1-MINUTE-LAST-EXTERNAL'"),
    (["catalog", "import", "/no/file.csv", "--instrument-id", BTC], "does not exist"),
    (["catalog", "import", "x.csv", "--instrument-id", "../../etc.SIM"], "Instrument id"),
    (["catalog", "import", "x.csv", "--instrument-id", BTC, "--bar-spec", "1min"], "STEP-AGGREGATION"),
    (["catalog", "export", "NOPE", "-o", "x.csv"], "No series"),
])
def test_errors_are_one_line_with_json_objects(run, args, message):
    code, out, err = run(*args, "--json") if args[1] != "export" else run(*args)
    assert code == 2
    assert message in err and "Traceback" not in err
    if args[1] != "export":
        assert message in json.loads(out)["error"]


def test_calendars_are_listed(capsys):
    assert cli(["catalog", "calendars", "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)]
    assert {"24/7", "fx", "cme-globex", "us-equity"} <= set(names)


def test_an_end_day_is_the_whole_day_as_on_the_pages(run, tmp_path):
    # Three days of 1-minute bars stamped at their close: 2024-01-01 00:01 .. 2024-01-04 00:00.
    index = pd.date_range("2024-01-01 00:01", periods=3 * 1440, freq="1min")
    path = tmp_path / "days.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 100.0,
                  "high": 101.0, "low": 99.0, "close": 100.5, "volume": 2.0}).to_csv(path,
                                                                                    index=False)
    assert run("catalog", "import", str(path), "--instrument-id", BTC)[0] == 0

    out_file = tmp_path / "day.csv"
    code, out, err = run("catalog", "export", KEY, "--start", "2024-01-02", "--end", "2024-01-02",
                         "-o", str(out_file))
    assert code == 0, err
    # Both ends included: 00:00 (the previous minute's close) through the day's last close.
    assert "Wrote 1,441 rows" in out or "Wrote 1441 rows" in out
    day = pd.read_csv(out_file)
    assert len(day) == 24 * 60 + 1

    code, _, err = run("catalog", "export", KEY, "--start", "2024-01-03", "--end", "2024-01-02",
                       "-o", str(tmp_path / "none.csv"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--end 2024-01-02 is before --start 2024-01-03" in err
    assert not (tmp_path / "none.csv").exists()
