"""CatalogBrowser driven through its parameters, over real services (no browser)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from components import CatalogBrowser
from components.catalog_browser import coverage_html
from services.catalog.coverage import Hole, Segment, SeriesCoverage
from services.catalog.inventory import PREVIEW_POINTS
from services.catalog.sources import safe_upload_name
from services.db import AuditEntry
from services.identity.principal import Principal
from services.timestamps import inclusive_end
from services.workbench import Workbench

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def empty_workbench(tmp_path):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(tmp_path / "catalog"))
    yield wb
    wb.database.dispose()


@pytest.fixture
def csv_bytes() -> bytes:
    index = pd.date_range("2024-01-02 00:01", periods=300, freq="1min").delete(range(100, 160))
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0,
                          "high": 10.5, "low": 9.5, "close": 10.25, "volume": 3})
    return frame.to_csv(index=False).encode()


RITA = Principal.user("rita", {"researcher", "admin"})


def test_sample_inventory_grouped_by_venue_and_instrument_with_a_bounded_preview(workbench):
    # Act
    browser = CatalogBrowser(workbench=workbench)

    # Assert: every series, its coverage, and a preview of at most PREVIEW_POINTS points.
    table = browser._table.value
    assert set(table["Series"]) == {s.key for s in workbench.catalog.series()}
    assert browser._table.groupby == ["Venue", "Instrument"]
    assert "Synthetic sample data** in every series" in browser.message
    assert set(table["Source"]) == {"synthetic sample"} and set(table["Holes"]) == {"none"}
    assert "cov-bar sample" in browser._timeline.object
    assert browser._timeline.object.count("cov-hole") == 1  # the legend's only
    browser.series = BTC_BARS
    points = browser._preview_pipe.data
    assert 0 < len(points) <= PREVIEW_POINTS
    assert "527,040 rows stored" in browser._preview_note.object
    assert all(key in browser._timeline.object for key in table["Series"])


def test_quality_check_fills_the_panel_and_the_report_download(workbench):
    browser = CatalogBrowser(workbench=workbench, series=BTC_BARS)
    browser.param.trigger("check")
    assert "against the **24/7** calendar" in browser._quality_summary.object
    assert browser._report_download.visible
    assert browser._report_file().getvalue().startswith(b"check,ts,end,detail")


def test_upload_preview_check_import_then_export_and_delete(empty_workbench, csv_bytes):
    # Arrange
    browser = CatalogBrowser(workbench=empty_workbench, principal=RITA)
    assert "holds no data yet" in browser.message

    # Act: upload (as the browser's FileInput does), preview, dry run, import.
    browser._upload.filename = "../../evil name.csv"
    browser._upload.value = csv_bytes
    browser.instrument_id = "BTCUSDT-PERP.BINANCE"
    browser.param.trigger("preview_import")
    previewed = browser.import_message
    browser.param.trigger("check_import")
    checked = browser.import_message
    assert empty_workbench.catalog.series() == []
    uploads = empty_workbench.settings.state_dir / "uploads"
    assert [p.parent for p in uploads.iterdir()] == [uploads]  # the name could not escape
    browser.param.trigger("run_import")

    # Assert
    assert list(uploads.iterdir()) == []  # the upload is removed once imported
    assert "new crypto-perp instrument" in previewed
    assert "Checked **240 rows**" in checked and "1 gaps (60 missing)" in checked
    assert "Imported **240 rows**" in browser.import_message
    assert browser.series == BTC_BARS and list(browser._table.value["Series"]) == [BTC_BARS]

    # Export the selection, then delete a range (confirmation first), audited.
    browser.start, browser.end = "2024-01-02 00:01", "2024-01-02 00:10"
    exported = pd.read_csv(browser._export_file())
    assert len(exported) == 10
    browser.param.trigger("delete")
    assert "confirm it" in browser.message and empty_workbench.catalog.find_series(BTC_BARS).rows == 240
    browser.confirm_delete = True
    browser.param.trigger("delete")
    assert empty_workbench.catalog.find_series(BTC_BARS).rows == 230
    with empty_workbench.database.session() as session:
        actions = [(e.action, e.actor) for e in session.scalars(select(AuditEntry))]
    assert actions == [("catalog.import", "rita"), ("catalog.export", "rita"),
                       ("catalog.delete", "rita")]


def test_bad_uploads_show_one_line_and_change_nothing(empty_workbench):
    browser = CatalogBrowser(workbench=empty_workbench)
    browser._upload.filename = "bad.csv"
    browser._upload.value = b"timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,x\n"
    browser.instrument_id = "BTCUSDT-PERP.BINANCE"
    browser.param.trigger("run_import")
    assert browser.import_message.startswith("Non-numeric close at line 2, column 'close'")
    assert empty_workbench.catalog.series() == []
    browser.instrument_id = ""
    browser.param.trigger("preview_import")
    assert "Give the instrument id" in browser.import_message


@pytest.mark.parametrize("name", ["../../x.csv", "..\\..\\x.csv", "/etc/passwd", "", ".hidden"])
def test_upload_names_stay_inside_the_uploads_folder(name):
    safe = safe_upload_name(name)
    assert "/" not in safe and "\\" not in safe and ".." not in safe.split("-", 1)[1][:2]


def test_a_level_change_needs_the_wizard_s_confirmation(empty_workbench, csv_bytes):
    # Arrange: BTC bars at ~10 are stored; the next file's prices are ~46,000.
    browser = CatalogBrowser(workbench=empty_workbench, principal=RITA)
    browser._upload.filename = "first.csv"
    browser._upload.value = csv_bytes
    browser.instrument_id = "BTCUSDT-PERP.BINANCE"
    browser.param.trigger("run_import")
    later = pd.date_range("2024-01-03 00:01", periods=50, freq="1min")
    other = pd.DataFrame({"timestamp": later.strftime("%Y-%m-%d %H:%M:%S"), "open": 46000.0,
                          "high": 46010.0, "low": 45990.0, "close": 46005.0, "volume": 1})
    browser._upload.filename = "other.csv"
    browser._upload.value = other.to_csv(index=False).encode()

    # Act / Assert: refused without the tick, imported with it.
    browser.param.trigger("run_import")
    assert "times those BTCUSDT-PERP.BINANCE already holds" in browser.import_message
    assert empty_workbench.catalog.find_series(BTC_BARS).rows == 240
    browser.accept_level_change = True
    browser.param.trigger("run_import")
    assert empty_workbench.catalog.find_series(BTC_BARS).rows == 290


def test_an_import_with_a_hole_shows_two_segments_and_the_hole(empty_workbench):
    # Arrange: 1-minute bars 00:01-02:00 and 07:01-08:00 of a 24/7 instrument: the bars that
    # would cover 02:00-07:00 are missing, 5 open hours.
    index = pd.date_range("2024-01-02 00:01", "2024-01-02 08:00", freq="1min")
    index = index[(index <= "2024-01-02 02:00") | (index >= "2024-01-02 07:01")]
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0,
                          "high": 10.5, "low": 9.5, "close": 10.25, "volume": 3})
    browser = CatalogBrowser(workbench=empty_workbench, principal=RITA)
    browser._upload.filename = "holey.csv"
    browser._upload.value = frame.to_csv(index=False).encode()
    browser.instrument_id = "BTCUSDT-PERP.BINANCE"

    # Act
    browser.param.trigger("run_import")

    # Assert: the inventory, the timeline and the segment list show it; nothing says synthetic.
    row = browser._table.value.iloc[0]
    assert (row["Source"], row["Holes"], row["Rows"]) == ("imported", "1 (5h00m)", 120 + 60)
    assert browser._timeline.object.count("cov-hole") == 2  # the hole and its legend entry
    assert browser._timeline.object.count('class="cov-bar "') == 2
    assert browser._segments.object.splitlines()[1:] == [
        "- 2024-01-02 00:01 to 2024-01-02 02:00 UTC: 120 rows, imported",
        "- *hole*: no data 2024-01-02 02:00\u20132024-01-02 07:01 (5h00m of open market)",
        "- 2024-01-02 07:01 to 2024-01-02 08:00 UTC: 60 rows, imported"]
    assert browser.message == ""  # "holds no data yet" went with the import


def test_coverage_html_places_segments_and_holes_on_one_time_axis():
    # Arrange: four days; data on the first and the last, a hole of two days between.
    t = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    coverage = SeriesCoverage(
        "X.SIM:trades", "trades", "24/7",
        (Segment(t("2024-01-01"), t("2024-01-02"), 10, "imported"),
         Segment(t("2024-01-04"), t("2024-01-05"), 5, "synthetic sample")),
        (Hole(t("2024-01-02"), t("2024-01-04"), 2 * 86400.0),))

    # Act
    text = coverage_html([coverage])

    # Assert
    assert 'class="cov-bar " title="X.SIM:trades: 2024-01-01 00:00 to 2024-01-02 00:00 UTC, ' \
           '10 rows, imported" style="left:0.000%;width:25.000%"' in text
    assert 'class="cov-bar sample"' in text and 'style="left:75.000%;width:25.000%"' in text
    assert ('class="cov-hole" title="X.SIM:trades: no data 2024-01-02 00:00\u20132024-01-04 '
            '00:00 (2d00h of open market)" style="left:25.000%;width:50.000%"') in text
    assert "<span>2024-01-01</span><span>2024-01-05</span>" in text


def test_the_end_day_is_included_as_on_the_backtest_page(empty_workbench):
    # Arrange: 1-minute bars closing 2024-01-02 22:01 to 2024-01-03 02:00 (240 bars); the bar
    # closing at midnight is the last of 2 January.
    index = pd.date_range("2024-01-02 22:01", periods=240, freq="1min")
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0,
                          "high": 10.5, "low": 9.5, "close": 10.25, "volume": 3})
    browser = CatalogBrowser(workbench=empty_workbench, principal=RITA)
    browser._upload.filename = "night.csv"
    browser._upload.value = frame.to_csv(index=False).encode()
    browser.instrument_id = "BTCUSDT-PERP.BINANCE"
    browser.param.trigger("run_import")

    # Act
    browser.start, browser.end = "2024-01-02", "2024-01-02"
    whole_day = pd.read_csv(browser._export_file())
    browser.end = "2024-01-02T23:00"
    to_eleven = pd.read_csv(browser._export_file())

    # Assert: 22:01 .. 00:00 is 120 bars; to 23:00 is 60.
    assert len(whole_day) == 120 and whole_day["ts_event"].iloc[-1] == "2024-01-03T00:00:00.000000Z"
    assert len(to_eleven) == 60
    assert "inclusive" in CatalogBrowser.param.end.doc and "Backtest page" in CatalogBrowser.param.end.doc


def test_both_pages_end_a_range_at_the_same_instant(workbench):
    # Arrange
    from components import BacktestConfigurator
    from components.run_form import RunForm
    from services.timestamps import parse_utc

    configurator = BacktestConfigurator(workbench=workbench)
    configurator.form.bar_type = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
    configurator.form.start, configurator.form.end = "2024-06-03", "2024-06-05"

    # Act
    backtest_end = parse_utc(configurator.spec().end, "end")
    catalog_end = inclusive_end("2024-06-05")  # what End 2024-06-05 reads as on Catalog

    # Assert: both mean the close of 5 June's last bar, midnight after it.
    assert backtest_end == catalog_end == pd.Timestamp("2024-06-06T00:00:00Z")
    assert "included" in RunForm.param.end.doc and "Catalog page" in RunForm.param.end.doc
    # A time of day is that instant on both pages.
    configurator.form.end = "2024-06-05 11:00"
    assert parse_utc(configurator.spec().end, "end") == inclusive_end("2024-06-05 11:00") == \
        pd.Timestamp("2024-06-05T11:00:00Z")


def test_the_synthetic_note_counts_whole_and_partly_synthetic_series_apart():
    from types import SimpleNamespace

    from components.catalog_browser import synthetic_share
    from services.catalog.coverage import IMPORTED, MIXED, SAMPLE

    def series(*origins):
        return [SimpleNamespace(origin=o) for o in origins]

    assert synthetic_share(series(SAMPLE, SAMPLE)) == "every series"
    assert synthetic_share(series(SAMPLE, MIXED, SAMPLE)) == "2 of 3 series and part of 1 more"
    assert synthetic_share(series(MIXED, IMPORTED)) == "part of 1 of 2 series"
    assert synthetic_share(series(IMPORTED)) == "" and synthetic_share([]) == ""
