"""The Overview: the queue, the last runs by name with their outcome, and the catalog."""

from __future__ import annotations

from components import Overview

RUN_TIMEOUT_S = 180  # seconds a one-week run may take on a busy machine

HOSTILE_LABEL = "<img src=x onerror=alert(1)> momentum"


def test_the_last_runs_are_named_linked_and_escaped(workbench, short_spec):
    # Arrange: one completed run whose label is markup
    run_id = workbench.backtests.submit(short_spec(label=HOSTILE_LABEL))
    info = workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    assert info.status == "Completed", info.error

    # Act
    overview = Overview(workbench=workbench)
    overview.live.refresh_runs()
    overview._redraw()
    shown = overview._now.object

    # Assert: linked to its results, its label shown as text, its return coloured by sign
    assert f'href="./results?run={run_id}"' in shown
    assert "&lt;img src=x onerror=alert(1)&gt; momentum" in shown and "<img" not in shown
    assert "Completed" in shown and "Running: 0" in shown and "Queued: 0" in shown
    assert "No engine is running" in shown


def test_the_catalog_is_listed_and_labelled_synthetic(workbench):
    overview = Overview(workbench=workbench)

    data = overview._data.object

    assert "synthetic sample data" in data.lower() and "not market data" in data
    for series in ("AAPL.XNAS-1-MINUTE-LAST-EXTERNAL",
                   "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", "EUR/USD.SIM:quotes"):
        assert f"<td>{series}</td>" in data
