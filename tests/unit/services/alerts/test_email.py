"""E-mail delivery of alerts to a real SMTP server on a free port (aiosmtpd)."""

from __future__ import annotations

import socket
import time
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from services import events
from services.alerts import AlertService
from services.alerts.channels import Email, channels_from_environment
from services.audit import AuditLog
from services.db import Database
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


class Engines:
    def get(self, session_id):
        from types import SimpleNamespace

        return SimpleNamespace(name="paper-btc", cpu_limit=1.0)


@pytest.fixture
def smtp():
    with socket.socket() as probe:  # aiosmtpd's controller needs the port up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_a_breach_is_mailed_to_every_recipient(tmp_path, smtp):
    # Arrange
    inbox, port = smtp
    db = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    db.upgrade()
    hub = events.EventHub()
    email = Email("127.0.0.1", port, "workbench@desk.example",
                  ("risk@desk.example", "ops@desk.example"), starttls=False)
    service = AlertService(db, hub, Authorizer(AuditLog(db), Principal.local()), Engines(),
                           channels=[email]).start()
    try:
        # Act
        hub.publish(events.RISK_EVENTS, "s1", {
            "type": "RiskLimitBreached", "breach": {"key": "max_daily_loss"},
            "message": "loss today 120.00 USDT is above max_daily_loss 100.00 USDT: trading "
                       "HALTED"})
        deadline = time.monotonic() + 10
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)

        # Assert
        recipients, message = inbox.messages[0]
        assert recipients == ["risk@desk.example", "ops@desk.example"]
        assert message["Subject"].startswith("[workbench critical] Engine 'paper-btc': loss "
                                             "today 120.00 USDT")
        assert '"rule": "risk_breach"' in message.get_payload()
        deadline = time.monotonic() + 5
        while service.list()[0].deliveries != {email.describe(): "sent"} \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.list()[0].deliveries == {
            f"e-mail via 127.0.0.1:{port} to 2 recipient(s)": "sent"}
    finally:
        service.stop()
        db.dispose()


def test_the_environment_configures_webhooks_and_email():
    channels = channels_from_environment({
        "WORKBENCH_ALERT_WEBHOOKS": "https://hooks.slack.example/T/B/secret, http://h:9/x",
        "WORKBENCH_SMTP_HOST": "smtp.example", "WORKBENCH_SMTP_PORT": "2525",
        "WORKBENCH_ALERT_EMAIL_TO": "a@x.example,b@x.example",
        "WORKBENCH_SMTP_STARTTLS": "false"})
    assert [c.describe() for c in channels] == [
        "webhook hooks.slack.example", "webhook h:9",
        "e-mail via smtp.example:2525 to 2 recipient(s)"]
    assert channels[2].starttls is False
    assert channels_from_environment({"WORKBENCH_SMTP_HOST": "smtp.example"}) == []
