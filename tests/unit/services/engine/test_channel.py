"""The command channel over a stand-in for Docker's exec stream (the one seam it talks to)."""

from __future__ import annotations

import json
import queue
import threading
import time

import pytest

from services.engine.channel import OLD_IMAGE, CommandChannel
from services.errors import CommandRefused, EngineError, EngineUnresponsive


class FakeSession:
    """An exec session whose other end is ``respond(request) -> answer | None``."""

    def __init__(self, respond, stderr: bytes = b"", closed_message: dict | None = None):
        self.respond = respond
        self.frames_out: queue.Queue = queue.Queue()
        self.written: list[dict] = []
        self.closed = False
        if stderr:
            self.frames_out.put((2, stderr))
            self.frames_out.put(None)
        if closed_message is not None:
            self.frames_out.put((1, json.dumps(closed_message).encode() + b"\n"))
            self.frames_out.put(None)

    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            request = json.loads(line)
            self.written.append(request)
            answer = self.respond(request)
            if answer is not None:
                text = json.dumps(answer).encode() + b"\n"
                # split the line over two frames: the reader must reassemble it
                self.frames_out.put((1, text[:5]))
                self.frames_out.put((1, text[5:]))

    def frames(self):
        while (item := self.frames_out.get()) is not None:
            yield item

    def close(self) -> None:
        self.closed = True
        self.frames_out.put(None)


class FakeGateway:
    def __init__(self, session_factory=None, once=None, open_error=None):
        self.session_factory = session_factory
        self.once = once
        self.open_error = open_error
        self.opened = 0
        self.once_calls: list[list[str]] = []

    def open_exec(self, container_id, command):
        if self.open_error is not None:
            raise self.open_error
        self.opened += 1
        return self.session_factory()

    def exec_once(self, container_id, command):
        self.once_calls.append(command)
        return self.once(command)


def _echo(request):
    return {"id": request["id"], "ok": True, "result": {"command": request["command"],
                                                         **request["args"]}}


def test_answers_come_back_to_their_caller_over_one_session():
    # Arrange
    gateway = FakeGateway(lambda: FakeSession(_echo))
    channel = CommandChannel(gateway, "c" * 64, "engine 'x'")

    # Act
    first = channel.call("orders", {"open_only": True})
    second = channel.call("hello")

    # Assert
    assert first == {"command": "orders", "open_only": True}
    assert second == {"command": "hello"}
    assert gateway.opened == 1  # the session stays open between commands


def test_concurrent_callers_each_get_their_own_answer_even_out_of_order():
    # Arrange: answer the first request only after the second one arrived
    held: list[dict] = []
    sessions: list[FakeSession] = []

    def respond(request):
        if request["args"].get("n") == 0:
            held.append(request)
            return None
        answer = _echo(request)
        if held:
            late = held.pop()
            sessions[0].frames_out.put((1, json.dumps(_echo(late)).encode() + b"\n"))
        return answer

    def make():
        sessions.append(FakeSession(respond))
        return sessions[-1]

    channel = CommandChannel(FakeGateway(make), "c" * 64, "engine 'x'")
    results = {}

    def call(n):
        results[n] = channel.call("status", {"n": n})

    # Act
    first = threading.Thread(target=call, args=(0,))
    first.start()
    time.sleep(0.05)
    call(1)
    first.join(timeout=3)

    # Assert
    assert results == {0: {"command": "status", "n": 0}, 1: {"command": "status", "n": 1}}


def test_an_engine_refusal_is_command_refused_with_its_line():
    channel = CommandChannel(FakeGateway(lambda: FakeSession(
        lambda r: {"id": r["id"], "ok": False, "error": "quantity 0.0005 is off"})), "c" * 64,
        "engine 'x'")
    with pytest.raises(CommandRefused, match="^quantity 0.0005 is off$"):
        channel.call("submit_order", {})


def test_an_engine_that_does_not_answer_times_out_within_the_deadline():
    # Arrange
    channel = CommandChannel(FakeGateway(lambda: FakeSession(lambda r: None)), "c" * 64,
                             "engine 'x'")
    started = time.monotonic()

    # Act
    with pytest.raises(EngineUnresponsive, match="did not answer flatten within 0.3 s"):
        channel.call("flatten", timeout=0.3)

    # Assert
    assert time.monotonic() - started < 1.0


def test_a_socket_that_is_not_open_fails_the_call_at_once_with_the_relays_reason():
    channel = CommandChannel(FakeGateway(lambda: FakeSession(
        lambda r: None, closed_message={"id": None, "ok": False, "channel": "closed",
                                        "error": "socket not open (starting)"})),
        "c" * 64, "engine 'x'")
    started = time.monotonic()
    with pytest.raises(EngineError, match="does not accept commands: socket not open"):
        channel.call("hello", timeout=2)
    assert time.monotonic() - started < 1.0


def test_an_image_without_the_relay_says_to_rebuild_it():
    channel = CommandChannel(FakeGateway(lambda: FakeSession(
        lambda r: None, stderr=b"/opt/venv/bin/python: No module named "
                               b"services.engine_runtime.relay\n")), "c" * 64, "engine 'x'")
    with pytest.raises(EngineError) as excinfo:
        channel.call("hello", timeout=2)
    assert str(excinfo.value) == OLD_IMAGE


def test_without_exec_streams_each_command_runs_as_its_own_exec():
    # Arrange
    def once(command):
        request = json.loads(command[command.index("--once") + 1])
        return 0, json.dumps(_echo(request)) + "\n"

    gateway = FakeGateway(once=once, open_error=EngineError("Docker refused to attach"))
    channel = CommandChannel(gateway, "c" * 64, "engine 'x'")

    # Act
    result = channel.call("risk")

    # Assert
    assert result == {"command": "risk"}
    assert gateway.once_calls[0][-2] == "--timeout"


def test_a_vanished_container_is_not_retried_as_one_shot():
    gateway = FakeGateway(open_error=EngineError("The engine's container abc is gone."))
    with pytest.raises(EngineError, match="is gone"):
        CommandChannel(gateway, "c" * 64, "engine 'x'").call("hello")
    assert gateway.once_calls == []


def test_a_session_that_ends_fails_the_commands_in_flight():
    # Arrange
    sessions = []

    def make():
        sessions.append(FakeSession(lambda r: None))
        return sessions[-1]

    channel = CommandChannel(FakeGateway(make), "c" * 64, "engine 'x'")
    threading.Timer(0.1, lambda: sessions[0].frames_out.put(None)).start()

    # Act / Assert
    with pytest.raises(EngineError, match="command channel closed .*outcome of a command in "
                                          "flight is unknown"):
        channel.call("flatten", timeout=2)
