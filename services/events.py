"""One event hub per workbench process: thread-safe publish/subscribe of engine events.

The engine watchers publish what the engines report (status snapshots, resource samples,
errors, orders, fills, positions, risk events); browser sessions, the websocket and the alert
rules subscribe. Publishing never waits for a subscriber and never runs a subscriber's code: each
subscription is a bounded queue that its owner drains in its own thread (or event loop), and a
subscriber that falls behind loses its oldest events (counted in ``dropped``), never the
publisher's time.

Plain Python by design (no Redis in the default path): the events come from the log streams this
process already follows, and fan-out to a few dozen sessions costs microseconds per event.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

ENGINE_STATUS = "nautilus_engine_status"
RESOURCE_METRICS = "resource_metrics"
ERROR_EVENTS = "error_events"
ORDER_EVENTS = "order_events"
POSITION_EVENTS = "position_events"
RISK_EVENTS = "risk_events"
ALERT_EVENTS = "alert_events"
EVENT_TYPES = (ENGINE_STATUS, RESOURCE_METRICS, ERROR_EVENTS, ORDER_EVENTS, POSITION_EVENTS,
               RISK_EVENTS, ALERT_EVENTS)
DEFAULT_QUEUE = 2000


@dataclass(frozen=True)
class Event:
    """One published event; ``source`` is the engine session id (or "workbench")."""

    seq: int
    type: str
    source: str
    ts: float
    data: dict

    def to_json(self) -> dict:
        return {"seq": self.seq, "type": self.type, "source": self.source, "ts": self.ts,
                "data": self.data}


@dataclass(eq=False)
class Subscription:
    """A bounded queue of events for one subscriber; iterate, ``get`` or ``drain`` it."""

    hub: EventHub
    types: frozenset[str] | None
    source: str | None
    maxsize: int
    notify: Callable[[], None] | None = None
    dropped: int = 0
    _items: deque = field(default_factory=deque)
    _ready: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def wants(self, event: Event) -> bool:
        return ((self.types is None or event.type in self.types)
                and (self.source is None or event.source == self.source))

    def _offer(self, event: Event) -> None:
        with self._ready:
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(event)
            self._ready.notify()
        if self.notify is not None:
            self.notify()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds; None on timeout or close."""
        with self._ready:
            if not self._items and not self.closed:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def drain(self) -> list[Event]:
        """Every queued event, without waiting."""
        with self._ready:
            items = list(self._items)
            self._items.clear()
            return items

    def __iter__(self) -> Iterator[Event]:
        while not self.closed:
            event = self.get(timeout=0.5)
            if event is not None:
                yield event

    def close(self) -> None:
        self.hub._remove(self)
        with self._ready:
            self.closed = True
            self._ready.notify_all()


class EventHub:
    """Thread-safe publish/subscribe; one per workbench process."""

    def __init__(self, history: int = 500) -> None:
        self._subscriptions: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._history: deque[Event] = deque(maxlen=history)
        self.published = 0

    def publish(self, type: str, source: str, data: dict) -> Event:
        """Offer an event to every matching subscription; returns it."""
        event = Event(next(self._seq), type, source, time.time(), data)
        self._history.append(event)
        self.published += 1
        for subscription in self._subscriptions:  # a snapshot: (un)subscribing swaps the tuple
            if subscription.wants(event):
                subscription._offer(event)
        return event

    def subscribe(self, types: Iterable[str] | None = None, source: str | None = None, *,
                  maxsize: int = DEFAULT_QUEUE, notify: Callable[[], None] | None = None,
                  replay: bool = False) -> Subscription:
        """A new subscription to ``types`` (all when None) of ``source`` (all when None).

        ``notify`` is called (in the publisher's thread: keep it to a wake-up such as
        ``loop.call_soon_threadsafe``) after each event is queued; ``replay`` first queues the
        recent events the hub still holds."""
        unknown = set(types or ()) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}; known: {EVENT_TYPES}")
        subscription = Subscription(self, frozenset(types) if types else None, source, maxsize,
                                    notify)
        with self._lock:
            if replay:
                for event in self._history:
                    if subscription.wants(event):
                        subscription._items.append(event)
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def recent(self, types: Iterable[str] | None = None, source: str | None = None,
               limit: int = 100) -> list[Event]:
        """The newest events the hub still holds, oldest first."""
        wanted = frozenset(types) if types else None
        found = [e for e in list(self._history)
                 if (wanted is None or e.type in wanted) and (source is None or e.source == source)]
        return found[-limit:]
