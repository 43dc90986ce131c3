"""Where alerts go: a generic JSON webhook (Slack, Discord, Telegram, anything that takes a POST)
and SMTP e-mail, each configured from the server's environment, delivered off the caller's
thread with a timeout so that a slow or dead receiver never holds anything up.

- ``WORKBENCH_ALERT_WEBHOOKS``: comma-separated URLs; each gets
  ``{"text": ..., "content": ..., "alert": {...}}`` (Slack reads ``text``, Discord ``content``).
- ``WORKBENCH_SMTP_HOST`` [``_PORT`` 587, ``_USER``, ``_PASSWORD``, ``_STARTTLS`` true],
  ``WORKBENCH_ALERT_EMAIL_FROM``, ``WORKBENCH_ALERT_EMAIL_TO`` (comma-separated).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import smtplib
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger("nautilus_workbench.alerts")
DELIVERY_TIMEOUT_S = 5.0
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Webhook:
    url: str
    name: str = "webhook"

    def send(self, alert: dict) -> None:
        body = json.dumps({"text": alert["message"], "content": alert["message"],
                           "alert": alert}, default=str).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "nautilus-workbench"})
        with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as response:
            if response.status >= 300:
                raise OSError(f"HTTP {response.status}")

    def describe(self) -> str:
        return f"webhook {urllib.parse.urlsplit(self.url).netloc}"  # never the URL's secret path


@dataclass(frozen=True)
class Email:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    name: str = "email"

    def send(self, alert: dict) -> None:
        message = EmailMessage()
        message["Subject"] = f"[workbench {alert['severity']}] {alert['message'][:120]}"
        message["From"], message["To"] = self.sender, ", ".join(self.recipients)
        message.set_content(json.dumps(alert, indent=2, default=str))
        with smtplib.SMTP(self.host, self.port, timeout=DELIVERY_TIMEOUT_S) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)

    def describe(self) -> str:
        return f"e-mail via {self.host}:{self.port} to {len(self.recipients)} recipient(s)"


def channels_from_environment(environ=os.environ) -> list:
    """The channels the environment configures (none when nothing is set)."""
    found: list = [Webhook(url.strip()) for url in environ.get("WORKBENCH_ALERT_WEBHOOKS", "")
                   .split(",") if url.strip()]
    host = environ.get("WORKBENCH_SMTP_HOST")
    recipients = tuple(a.strip() for a in environ.get("WORKBENCH_ALERT_EMAIL_TO", "").split(",")
                       if a.strip())
    if host and recipients:
        found.append(Email(host, int(environ.get("WORKBENCH_SMTP_PORT", "587")),
                           environ.get("WORKBENCH_ALERT_EMAIL_FROM", "workbench@localhost"),
                           recipients, environ.get("WORKBENCH_SMTP_USER"),
                           environ.get("WORKBENCH_SMTP_PASSWORD"),
                           environ.get("WORKBENCH_SMTP_STARTTLS", "true").lower() != "false"))
    return found


class Dispatcher:
    """Delivers alerts, one queue and one thread per channel, so that a slow receiver delays
    only its own deliveries. ``done(alert_id, channel, outcome)`` records each outcome ("sent"
    or "failed: ...") under the channel's ``describe()``. ``submit`` never blocks: when a
    channel's queue is full the delivery is dropped and recorded as such."""

    def __init__(self, done: Callable[[int, str, str], None]) -> None:
        self._done = done
        self._queues: dict[str, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, alert_id: int, channel, alert: dict) -> None:
        key = channel.describe()
        with self._lock:
            if key not in self._queues:
                self._queues[key] = queue.Queue(QUEUE_SIZE)
                thread = threading.Thread(target=self._run, args=(self._queues[key],),
                                          name=f"alert-delivery-{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        try:
            self._queues[key].put_nowait((alert_id, channel, alert))
        except queue.Full:
            self._done(alert_id, key, "failed: delivery queue full")

    def _run(self, items: queue.Queue) -> None:
        while (item := items.get()) is not None:
            alert_id, channel, alert = item
            try:
                channel.send(alert)
                outcome = "sent"
            except (OSError, urllib.error.URLError, smtplib.SMTPException, ValueError) as e:
                outcome = f"failed: {type(e).__name__}: {e}"[:300]
                log.warning("alert %s to %s %s", alert_id, channel.describe(), outcome)
            try:
                self._done(alert_id, channel.describe(), outcome)
            except Exception:  # recording must not end the delivery thread
                log.exception("recording the delivery of alert %s failed", alert_id)

    def stop(self) -> None:
        with self._lock:
            queues, threads = list(self._queues.values()), list(self._threads)
        for items in queues:
            items.put(None)
        for thread in threads:
            thread.join(timeout=1.0)  # daemon threads: a delivery in flight ends with the process
