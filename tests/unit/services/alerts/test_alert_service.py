"""The alert service with a real SQLite database and a real local HTTP webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services import events
from services.alerts import AlertService
from services.alerts.channels import Webhook
from services.audit import AuditLog
from services.db import Database
from services.errors import PermissionDenied, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal


class Receiver:
    """A webhook receiver on a free port; ``delay`` makes it slow."""

    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay)
                receiver.received.append(body)
                receiver.arrived.set()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class Engines:
    """The engine lookup the service needs: names and CPU limits."""

    def get(self, session_id):
        from types import SimpleNamespace

        return SimpleNamespace(name=f"engine-{session_id}", cpu_limit=1.0)


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    db.upgrade()
    yield db
    db.dispose()


def _service(database, hub, channels):
    audit = AuditLog(database)
    return AlertService(database, hub, Authorizer(audit, Principal.local()), Engines(),
                        channels=channels)


def _breach(hub, source="s1", key="max_daily_loss"):
    return hub.publish(events.RISK_EVENTS, source, {
        "type": "RiskLimitBreached", "message": f"{key} breached: trading HALTED",
        "breach": {"key": key}})


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_breach_is_stored_published_and_posted_to_the_webhook(database):
    # Arrange
    receiver = Receiver()
    hub = events.EventHub()
    shown = hub.subscribe([events.ALERT_EVENTS])
    service = _service(database, hub, [Webhook(receiver.url)]).start()
    try:
        # Act
        _breach(hub)

        # Assert
        assert receiver.arrived.wait(5)
        posted = receiver.received[0]
        assert posted["text"] == posted["content"] == "Engine 'engine-s1': max_daily_loss " \
                                                      "breached: trading HALTED"
        assert posted["alert"]["rule"] == "risk_breach"
        assert _wait(lambda: service.list()[0].deliveries == {
            f"webhook 127.0.0.1:{receiver.server.server_port}": "sent"})
        assert shown.get(timeout=1).data["message"].endswith("trading HALTED")
    finally:
        service.stop()
        receiver.close()


def test_repeats_within_the_cool_down_count_as_occurrences_not_deliveries(database):
    receiver = Receiver()
    hub = events.EventHub()
    service = _service(database, hub, [Webhook(receiver.url)])
    try:
        first = service.handle(_breach(hub))
        second = service.handle(_breach(hub))
        other = service.handle(_breach(hub, key="max_drawdown"))
        assert len(first) == 1 and second == [] and len(other) == 1
        stored = {a.key: a for a in service.list()}
        assert stored["risk_breach:s1:max_daily_loss"].occurrences == 2
        assert stored["risk_breach:s1:max_drawdown"].occurrences == 1
    finally:
        receiver.close()


def test_a_level_rule_raises_on_the_edge_and_again_after_clearing_past_the_cool_down(database):
    hub = events.EventHub()
    service = _service(database, hub, [])
    service.set_rule("no_data", threshold=30, cooldown_s=0)

    def status(age):
        return hub.publish(events.ENGINE_STATUS, "s1", {"status": {
            "feed": {"instruments": {"BTC.X": {"age_s": age}}}}})

    assert len(service.handle(status(45))) == 1
    assert service.handle(status(50)) == []  # still the same condition: no new alert
    assert service.handle(status(1)) == []   # clears
    assert len(service.handle(status(40))) == 1


def test_a_slow_or_dead_webhook_never_holds_up_the_rules(database):
    # Arrange: one receiver that takes 3 s per call, one port nobody listens on
    slow = Receiver(delay=3.0)
    hub = events.EventHub()
    service = _service(database, hub, [Webhook(slow.url),
                                       Webhook("http://127.0.0.1:9/nobody")]).start()
    try:
        # Act
        started = time.monotonic()
        raised = [service.handle(_breach(hub, key=f"limit{i}")) for i in range(5)]
        took = time.monotonic() - started

        # Assert
        assert took < 0.5 and all(len(r) == 1 for r in raised)
        assert _wait(lambda: all(a.deliveries.get("webhook 127.0.0.1:9", "pending")
                                 .startswith("failed") for a in service.list()), timeout=10)
    finally:
        service.stop()
        slow.close()


def test_rules_change_only_for_admins_and_approvers_and_bad_values_are_named(database):
    service = _service(database, events.EventHub(), [])
    trader = Principal.user("tom", {"trader"})
    with pytest.raises(PermissionDenied, match="tom may not change alert rules"):
        service.set_rule("cpu", threshold=50, principal=trader)
    with pytest.raises(ValidationError) as excinfo:
        service.set_rule("risk_breach", threshold=5, cooldown_s=-1, channels=["sms"])
    assert excinfo.value.problems == [
        "threshold: risk_breach takes no threshold",
        "cooldown_s: must be 0 to 86400 seconds, was -1",
        "channels: unknown ['sms'] (known: webhook, email)"]
    with pytest.raises(ValidationError, match="There is no alert rule 'gpu'"):
        service.set_rule("gpu", enabled=False)


def test_changed_rules_survive_a_restart_of_the_service(database):
    service = _service(database, events.EventHub(), [])
    service.set_rule("memory", threshold=75, enabled=False)
    again = {r.name: r for r in _service(database, events.EventHub(), []).rules()}
    assert (again["memory"].threshold, again["memory"].enabled) == (75.0, False)
    assert again["cpu"].threshold == 90.0
