"""Copy JSON lines between this process's stdin/stdout and the engine's control socket.

    python -S -m services.engine_runtime.relay            # a persistent session
    python -S -m services.engine_runtime.relay --once '{"id": "1", "command": "hello"}' [--timeout 2]

The workbench runs this with ``docker exec`` inside the engine container: one long-lived exec
session per engine (a command then costs a line on an open connection, not an exec start-up),
and ``--once`` as the fallback when no session can be kept. Works the same with a remote
DOCKER_HOST and with the container's network disabled: only Docker's exec stream is used.
Stdlib only, started with ``-S``, so it starts in a few milliseconds.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

from services.engine_runtime.protocol import SOCKET_PATH

EXIT_NO_SOCKET = 3
EXIT_TIMEOUT = 4


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        sys.stdout.write(json.dumps({
            "id": None, "ok": False, "channel": "closed",
            "error": f"the engine's control socket {path} is not open ({reason}): the engine is "
                     "starting or stopping, or its image predates live commands",
        }) + "\n")
        sys.stdout.flush()
        sock.close()
        return None
    return sock


def _pump_stdin(sock: socket.socket) -> None:
    stdin = sys.stdin.buffer
    try:
        while line := stdin.readline():
            sock.sendall(line)
    except OSError:
        pass
    finally:
        try:
            sock.shutdown(socket.SHUT_WR)  # the server finishes what it has, then closes
        except OSError:
            pass


def main(argv: list[str]) -> int:
    sock = _connect(SOCKET_PATH)
    if sock is None:
        return EXIT_NO_SOCKET
    out = sys.stdout.buffer
    if "--once" in argv:
        if "--timeout" in argv:  # a hung engine must not hang the caller's exec
            sock.settimeout(float(argv[argv.index("--timeout") + 1]))
        sock.sendall(argv[argv.index("--once") + 1].encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
    else:
        threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
    with sock:
        try:
            while chunk := sock.recv(65536):
                out.write(chunk)
                out.flush()
        except TimeoutError:
            return EXIT_TIMEOUT
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # not sys.exit: the stdin thread may hold stdin's lock at shutdown
