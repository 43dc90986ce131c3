"""The command channel into one engine container: JSON lines over a ``docker exec`` session.

One long-lived exec of the relay (services.engine_runtime.relay) per engine carries every
command: a command costs one line on an open connection (well under a millisecond here) instead
of an exec start-up (~60 ms). Answers are matched to requests by id, so several callers can
share the session. When no session can be opened over the Docker connection (a proxy that does
not support exec streams, or ``WORKBENCH_ENGINE_CHANNEL=exec-once``), each command runs as its
own ``docker exec ... relay --once``. Only Docker is used: it works with a remote DOCKER_HOST
and with the container's network disabled.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from services.engine.docker_api import DockerGateway, ExecSession
from services.engine.image import ENGINE_PYTHON
from services.errors import CommandRefused, EngineError, EngineUnresponsive

RELAY = [ENGINE_PYTHON, "-S", "-m", "services.engine_runtime.relay"]
COMMAND_TIMEOUT = 2.0
OLD_IMAGE = ("The engine's image predates live commands (it has no command relay): rebuild the "
             "engine image (nautilus-workbench engine build-image) and restart the engine.")


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict | None = None
    failure: str | None = None


class CommandChannel:
    """Commands into one container; thread-safe."""

    def __init__(self, gateway: DockerGateway, container_id: str, label: str) -> None:
        self.gateway = gateway
        self.container_id = container_id
        self.label = label  # "engine 'paper-btc'" in messages
        self.one_shot = os.environ.get("WORKBENCH_ENGINE_CHANNEL") == "exec-once"
        self._session: ExecSession | None = None
        self._pending: dict[str, _Pending] = {}
        self._stderr: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._last_failure = "The engine's command channel closed."

    def call(self, command: str, args: dict | None = None,
             timeout: float = COMMAND_TIMEOUT) -> dict:
        """The engine's result of ``command``; CommandRefused when the engine says no,
        EngineUnresponsive when it does not answer within ``timeout``, EngineError when the
        channel cannot be used."""
        deadline = time.monotonic() + timeout
        request_id = f"{os.getpid()}-{next(self._ids)}"
        line = json.dumps({"id": request_id, "command": command, "args": args or {}})
        session = None if self.one_shot else self._open()
        if session is None:
            return self._result(self._once(line, request_id, deadline))
        pending = _Pending()
        with self._lock:
            self._pending[request_id] = pending
        try:
            session.write(line.encode() + b"\n")
        except EngineError:
            self._drop(session)
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        with self._lock:  # the session may have ended before this request was registered
            if self._session is not session and not pending.done.is_set():
                self._pending.pop(request_id, None)
                raise EngineError(self._last_failure)
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                self._pending.pop(request_id, None)
            raise EngineUnresponsive(
                f"The {self.label} did not answer {command} within {timeout:g} s: its event "
                "loop may be hung. Its outcome is unknown; emergency stop still works.")
        if pending.failure is not None:
            raise EngineError(pending.failure)
        return self._result(pending.answer)

    @staticmethod
    def _result(answer: dict) -> dict:
        if answer.get("ok"):
            return answer.get("result") or {}
        raise CommandRefused(str(answer.get("error") or "the engine refused the command"))

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()
        self._fail_all("The engine's command channel was closed.")

    # -- the persistent session -----------------------------------------------------------

    def _open(self) -> ExecSession | None:
        """The open session, a new one, or None when sessions cannot be opened here."""
        with self._lock:
            if self._session is not None:
                return self._session
            try:
                session = self.gateway.open_exec(self.container_id, RELAY)
            except EngineError as e:
                if "is gone" in str(e):
                    raise
                return None  # exec streams not available over this connection: one-shot
            self._session = session
            self._stderr.clear()
            self._last_failure = "The engine's command channel closed."
        threading.Thread(target=self._read, args=(session,), daemon=True,
                         name=f"engine-channel-{self.container_id[:12]}").start()
        return session

    def _read(self, session: ExecSession) -> None:
        buffer = b""
        for stream, data in session.frames():
            if stream == 2:
                self._stderr.append(data.decode("utf-8", errors="replace"))
                continue
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                self._dispatch(raw)
        if not self._last_failure.startswith(f"The {self.label} does not accept"):
            self._last_failure = self._ended()
        self._drop(session)  # before failing the pending calls: see call()
        self._fail_all(self._last_failure)

    def _dispatch(self, raw: bytes) -> None:
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            return
        if answer.get("channel") == "closed":  # the relay could not reach the socket
            self._last_failure = (f"The {self.label} does not accept commands: "
                                  f"{answer.get('error')}")
            self._fail_all(self._last_failure)
            return
        with self._lock:
            pending = self._pending.pop(str(answer.get("id")), None)
        if pending is not None:
            pending.answer = answer
            pending.done.set()

    def _ended(self) -> str:
        errors = "".join(self._stderr)
        if "No module named" in errors and "relay" in errors:
            return OLD_IMAGE
        return (f"The {self.label}'s command channel closed (the engine stopped or its "
                "container was killed); the outcome of a command in flight is unknown.")

    def _drop(self, session: ExecSession) -> None:
        with self._lock:
            if self._session is session:
                self._session = None
        session.close()

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for item in pending:
            item.failure = reason
            item.done.set()

    # -- one exec per command -------------------------------------------------------------

    def _once(self, line: str, request_id: str, deadline: float) -> dict:
        remaining = max(0.1, deadline - time.monotonic())
        code, output = self.gateway.exec_once(
            self.container_id, [*RELAY, "--once", line, "--timeout", f"{remaining:.2f}"])
        for raw in output.splitlines():
            try:
                answer = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if answer.get("channel") == "closed":
                raise EngineError(f"The {self.label} does not accept commands: "
                                  f"{answer.get('error')}")
            if answer.get("id") == request_id:
                return answer
        if code == 4:
            raise EngineUnresponsive(f"The {self.label} did not answer within {remaining:.1f} s:"
                                     " its event loop may be hung; emergency stop still works.")
        if code == 1 and not output:
            raise EngineError(OLD_IMAGE)
        raise EngineError(f"The {self.label} gave no answer (relay exit code {code}).")
