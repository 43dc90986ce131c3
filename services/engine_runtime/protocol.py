"""What the workbench and an engine container say to each other (stdlib only: both sides import it).

Two channels, both through Docker:

- **Status and events** flow out on the container's log stream: lines starting with
  STATUS_PREFIX and followed by JSON. A line with a ``state`` key changes the engine's state, a
  line with an ``event`` key is one event (see EVENT_KINDS), any other line is a status snapshot.
- **Commands** flow in through the control socket the bootstrap serves inside the container
  (under /tmp, a tmpfs: the root file system is read-only). The workbench reaches it with
  ``docker exec`` running :mod:`services.engine_runtime.relay`, which copies JSON lines between
  the exec session's stdin/stdout and the socket. One request per line:
  ``{"id": "...", "command": "submit_order", "args": {...}}``; one answer per line:
  ``{"id": "...", "ok": true, "result": {...}}`` or ``{"id": "...", "ok": false, "error": "..."}``.
  Answers may come back in another order than the requests went in (matched by ``id``).
"""

from __future__ import annotations

import os

STATUS_PREFIX = "@@workbench "
PROTOCOL_VERSION = 1
SOCKET_PATH = os.environ.get("WORKBENCH_CONTROL_SOCKET", "/tmp/workbench/control.sock")

# Event lines: {"event": KIND, ...}; the workbench publishes them under the hub's event types.
EVENT_KINDS = {"order": "order_events", "position": "position_events", "risk": "risk_events"}

# Commands the control socket understands (the relay itself answers nothing).
COMMANDS = (
    "hello", "status", "orders", "fills", "positions", "risk", "feed",
    "submit_order", "modify_order", "cancel_order", "cancel_all", "close_position", "flatten",
    "set_trading_state", "strategy", "set_risk_limits",
)
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
STRATEGY_ACTIONS = ("pause", "resume", "stop")
ORDER_SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT")
TIMES_IN_FORCE = ("GTC", "IOC")
# The engine waits this long for a venue's first answer to a command before it replies
# "submitted, no answer yet"; the workbench's own deadline for any reply is 2 s.
ANSWER_WAIT_SECONDS = 1.2
MANUAL_STRATEGY_ID = "Workbench-MANUAL"
