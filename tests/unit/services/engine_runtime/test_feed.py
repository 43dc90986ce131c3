"""Feed health: latency, age, gaps and disconnections from the updates an engine sees."""

from __future__ import annotations

import pytest

from services.engine_runtime.feed import FeedHealth

MS = 1_000_000  # nanoseconds


def test_latency_is_ts_init_minus_ts_event_and_the_worst_resets_per_snapshot():
    # Arrange
    feed = FeedHealth(gap_seconds=10)
    feed.on_update("BTC.X", ts_event_ns=1000 * MS, ts_init_ns=1003 * MS, wall=100.0)
    feed.on_update("BTC.X", ts_event_ns=2000 * MS, ts_init_ns=2040 * MS, wall=101.0)
    feed.on_update("BTC.X", ts_event_ns=3000 * MS, ts_init_ns=3002 * MS, wall=102.0)

    # Act
    first = feed.snapshot(wall=102.5)["instruments"]["BTC.X"]
    second = feed.snapshot(wall=104.0)["instruments"]["BTC.X"]

    # Assert
    assert first == {"age_s": 0.5, "latency_ms": 2.0, "latency_max_ms": 40.0, "updates": 3,
                     "gaps": 0}
    assert second["latency_max_ms"] == 2.0  # the worst since the previous snapshot
    assert second["age_s"] == 2.0


def test_an_interval_longer_than_the_gap_threshold_is_a_gap():
    # Arrange
    feed = FeedHealth(gap_seconds=5)

    # Act
    for wall in (0.0, 1.0, 7.0, 8.0, 20.0):
        feed.on_update("EUR/USD.SIM", 0, 0, wall)

    # Assert
    assert feed.snapshot(21.0)["instruments"]["EUR/USD.SIM"]["gaps"] == 2


def test_a_clock_skewed_feed_never_shows_negative_latency():
    feed = FeedHealth()
    feed.on_update("X.Y", ts_event_ns=5 * MS, ts_init_ns=1 * MS, wall=0.0)
    assert feed.snapshot(0.0)["instruments"]["X.Y"]["latency_ms"] == 0.0


def test_disconnections_count_connected_to_disconnected_transitions():
    # Arrange
    feed = FeedHealth()

    # Act
    for connected in (False, True, True, False, True, False):
        feed.on_client_state("BINANCE", connected)

    # Assert
    snapshot = feed.snapshot(0.0)
    assert snapshot["disconnections"] == 2
    assert snapshot["clients"] == {"BINANCE": False}


@pytest.mark.parametrize("instruments", [0, 3])
def test_the_snapshot_lists_every_instrument_seen(instruments):
    feed = FeedHealth()
    for i in range(instruments):
        feed.on_update(f"I{i}.V", 0, 0, 1.0)
    assert sorted(feed.snapshot(1.0)["instruments"]) == [f"I{i}.V" for i in range(instruments)]
