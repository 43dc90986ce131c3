"""Submitting backtests over the API reads a data window as the pages and the CLI do."""

from __future__ import annotations

from tests.integration.api.conftest import ENGINE_ROOT

AAPL = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"


def test_an_end_day_is_that_whole_day(api_without_docker):
    submitted = api_without_docker.request("post", f"{ENGINE_ROOT}/backtest", role="researcher",
                                           json={"strategy": "ema_cross", "bar_type": AAPL,
                                                 "start": "2024-03-04", "end": "2024-03-04"})
    assert submitted.status_code == 202, submitted.text
    run = submitted.json()["run"]
    try:
        # Through the day's last bar, which closes at the next midnight (UTC).
        assert (run["start"][:19], run["end"][:19]) == ("2024-03-04T00:00:00",
                                                        "2024-03-05T00:00:00")
    finally:
        api_without_docker.request("delete", f"{ENGINE_ROOT}/backtest/{run['run_id']}",
                                   role="researcher")


def test_a_reversed_window_is_refused_naming_the_days_sent(api_without_docker):
    before = api_without_docker.request("get", f"{ENGINE_ROOT}/backtests", role="viewer").json()
    refused = api_without_docker.request("post", f"{ENGINE_ROOT}/backtest", role="researcher",
                                         json={"strategy": "ema_cross", "bar_type": AAPL,
                                               "start": "2024-12-10", "end": "2024-12-05"})
    assert refused.status_code == 422
    assert "end 2024-12-05 is before start 2024-12-10" in " ".join(refused.json()["problems"])
    after = api_without_docker.request("get", f"{ENGINE_ROOT}/backtests", role="viewer").json()
    assert len(after["runs"]) == len(before["runs"])  # nothing queued
