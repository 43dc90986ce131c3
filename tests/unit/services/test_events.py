"""The event hub: filtered fan-out, bounded queues, no waiting on subscribers."""

from __future__ import annotations

import threading

import pytest

from services.events import ENGINE_STATUS, ORDER_EVENTS, RISK_EVENTS, EventHub


def test_each_subscription_gets_the_types_and_source_it_asked_for():
    # Arrange
    hub = EventHub()
    everything = hub.subscribe()
    orders = hub.subscribe([ORDER_EVENTS])
    engine_b = hub.subscribe(source="b")

    # Act
    hub.publish(ENGINE_STATUS, "a", {"n": 1})
    hub.publish(ORDER_EVENTS, "a", {"n": 2})
    hub.publish(ORDER_EVENTS, "b", {"n": 3})

    # Assert
    assert [e.data["n"] for e in everything.drain()] == [1, 2, 3]
    assert [e.data["n"] for e in orders.drain()] == [2, 3]
    assert [e.data["n"] for e in engine_b.drain()] == [3]


def test_events_are_numbered_in_publishing_order():
    hub = EventHub()
    sub = hub.subscribe()
    published = [hub.publish(RISK_EVENTS, "x", {}) for _ in range(3)]
    assert [e.seq for e in sub.drain()] == [e.seq for e in published] == [1, 2, 3]


def test_a_subscriber_that_falls_behind_loses_its_oldest_events_not_the_publishers_time():
    # Arrange
    hub = EventHub()
    slow = hub.subscribe(maxsize=3)

    # Act
    for n in range(10):
        hub.publish(ORDER_EVENTS, "x", {"n": n})

    # Assert
    assert [e.data["n"] for e in slow.drain()] == [7, 8, 9]
    assert slow.dropped == 7


def test_get_waits_for_the_next_event_from_another_thread():
    # Arrange
    hub = EventHub()
    sub = hub.subscribe()
    timer = threading.Timer(0.05, hub.publish, args=(ORDER_EVENTS, "x", {"late": True}))

    # Act
    timer.start()
    event = sub.get(timeout=5)

    # Assert
    assert event is not None and event.data == {"late": True}


def test_a_closed_subscription_receives_nothing_more():
    hub = EventHub()
    sub = hub.subscribe()
    sub.close()
    hub.publish(ORDER_EVENTS, "x", {})
    assert sub.drain() == [] and hub.subscribers == 0
    assert sub.get(timeout=0.01) is None


def test_notify_is_called_after_the_event_is_queued():
    # Arrange
    hub = EventHub()
    seen = []
    sub = hub.subscribe(notify=lambda: seen.append(len(sub.drain())))

    # Act
    hub.publish(ORDER_EVENTS, "x", {})

    # Assert
    assert seen == [1]


def test_replay_queues_the_recent_history_first():
    hub = EventHub(history=2)
    for n in range(3):
        hub.publish(ORDER_EVENTS, "x", {"n": n})
    sub = hub.subscribe(replay=True)
    assert [e.data["n"] for e in sub.drain()] == [1, 2]
    assert [e.data["n"] for e in hub.recent(limit=1)] == [2]


def test_unknown_event_types_are_refused():
    with pytest.raises(ValueError, match="unknown event types \\['orders'\\]"):
        EventHub().subscribe(["orders"])


def test_publishing_from_many_threads_loses_nothing():
    # Arrange
    hub = EventHub()
    sub = hub.subscribe(maxsize=10_000)

    def burst():
        for _ in range(500):
            hub.publish(ORDER_EVENTS, "x", {})

    threads = [threading.Thread(target=burst) for _ in range(4)]

    # Act
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Assert
    seqs = [e.seq for e in sub.drain()]
    assert len(seqs) == 2000 and len(set(seqs)) == 2000
