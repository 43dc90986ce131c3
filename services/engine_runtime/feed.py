"""Feed health of one engine (stdlib only): latency, age of the last update, gaps, disconnections.

The engine feeds every quote, trade and bar it receives into :class:`FeedHealth` (from the
message bus, so nothing is subscribed twice at the venue) and the data clients' connection state
once a second; the status stream carries :meth:`FeedHealth.snapshot`.

- latency: ``ts_init - ts_event`` of each update (how late the engine got it against the time
  the venue, or the replay's schedule, says it happened), last and worst since the previous
  snapshot;
- age: seconds since the last update of an instrument;
- gaps: intervals between two updates of an instrument longer than ``gap_seconds``;
- disconnections: transitions of a data client from connected to disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_GAP_SECONDS = 10.0


@dataclass
class _Instrument:
    last_wall: float
    latency_ms: float
    worst_ms: float
    updates: int = 0
    gaps: int = 0


class FeedHealth:
    """Not thread-safe: the engine calls it from its event loop only."""

    def __init__(self, gap_seconds: float = DEFAULT_GAP_SECONDS) -> None:
        self.gap_seconds = gap_seconds
        self._instruments: dict[str, _Instrument] = {}
        self._clients: dict[str, bool] = {}
        self.disconnections = 0

    def on_update(self, instrument_id: str, ts_event_ns: int, ts_init_ns: int,
                  wall: float) -> None:
        latency = max(0.0, (ts_init_ns - ts_event_ns) / 1e6)
        item = self._instruments.get(instrument_id)
        if item is None:
            self._instruments[instrument_id] = _Instrument(wall, latency, latency, 1)
            return
        if wall - item.last_wall > self.gap_seconds:
            item.gaps += 1
        item.last_wall = wall
        item.latency_ms = latency
        item.worst_ms = max(item.worst_ms, latency)
        item.updates += 1

    def on_client_state(self, client: str, connected: bool) -> None:
        if self._clients.get(client) and not connected:
            self.disconnections += 1
        self._clients[client] = connected

    def snapshot(self, wall: float) -> dict:
        """Per instrument: age, latency (last and worst since the previous snapshot), updates
        and gaps so far; the clients' connection state and the disconnections so far."""
        instruments = {}
        for instrument_id, item in self._instruments.items():
            instruments[instrument_id] = {
                "age_s": round(max(0.0, wall - item.last_wall), 3),
                "latency_ms": round(item.latency_ms, 3),
                "latency_max_ms": round(item.worst_ms, 3),
                "updates": item.updates,
                "gaps": item.gaps,
            }
            item.worst_ms = item.latency_ms
        return {"instruments": instruments, "clients": dict(self._clients),
                "disconnections": self.disconnections, "gap_seconds": self.gap_seconds}
