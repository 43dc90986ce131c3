"""Template checks that call into NautilusTrader run here, in a child process.

Decoding a config into NautilusTrader's classes constructs identifiers and enums in its Rust
core, where a malformed value can panic, and a panic aborts the process it happens in. The
workbench's own checks (``services.identifiers``) come first and catch what is known; this is
the net under them, so that no template can take the server down. One long-lived child answers
the checks (restarted after an abort), and results are cached per process by the hash of what
was checked.

Run as ``python -m services.template_probe``: it reads one JSON request per line on stdin and
answers each with a JSON list of problems.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading

STRATEGY_CONFIG, BACKTEST_ENGINE, ENGINE_NODE = "strategy_config", "backtest_engine", "engine_node"
TIMEOUT_S = 120.0

_cache: dict[str, tuple[str, ...]] = {}
_cache_lock = threading.Lock()


class _ProbeProcess:
    """One long-lived child that answers check requests, one JSON line each way; started on
    first use and again after it died (importing NautilusTrader costs a second or two, a check
    a few milliseconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr = None

    def ask(self, request: dict) -> tuple[str, ...]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            process = self._process
            try:
                process.stdin.write(json.dumps(request, default=str) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                return self._died()
            ready, _, _ = select.select([process.stdout], [], [], TIMEOUT_S)
            if not ready:
                process.kill()
                process.wait()
                self._process = None
                return (f"NautilusTrader did not finish checking it within {TIMEOUT_S:.0f} s",)
            line = process.stdout.readline()
            if not line:
                return self._died()
            return tuple(json.loads(line))

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "RUST_BACKTRACE": "0"}  # a panic then prints its message only
        self._process = subprocess.Popen(
            [sys.executable, "-m", "services.template_probe"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)

    def _died(self) -> tuple[str, ...]:
        """The child ended while checking: what it said last is the problem."""
        code = self._process.wait()
        self._process = None
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().splitlines() if line.strip()]
        self._stderr.close()
        panic = next((i for i, line in enumerate(lines) if " panicked at " in line), None)
        last = lines[panic + 1] if panic is not None and panic + 1 < len(lines) else (
            lines[-1] if lines else "")
        how = (f"aborted ({signal.Signals(-code).name})" if code < 0
               else f"failed (exit code {code})")
        return (f"NautilusTrader {how} while decoding it: {last[:500]}",)


_probe = _ProbeProcess()


def nautilus_problems(kind: str, payload: dict) -> list[str]:
    """Problems NautilusTrader finds decoding ``payload`` (see :func:`_check`), from a child
    process; an abort there is reported as a problem, never felt here."""
    key = hashlib.sha256(json.dumps([kind, payload], sort_keys=True, default=str).encode()
                         ).hexdigest()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return list(cached)
    # The child imports strategy packages the way this process does (sys.path as it is now).
    problems = _probe.ask({"kind": kind, "payload": payload, "path": sys.path})
    with _cache_lock:
        _cache[key] = problems
    return list(problems)


def _check(kind: str, payload: dict) -> list[str]:
    """The NautilusTrader decodes of one template (runs in the child)."""
    import msgspec
    from nautilus_trader.common.config import msgspec_decoding_hook, resolve_path

    def decode(data: dict, cls) -> None:
        msgspec.json.decode(msgspec.json.encode(data), type=cls, dec_hook=msgspec_decoding_hook)

    if kind == STRATEGY_CONFIG:
        config_cls = resolve_path(payload["config_path"])
        try:
            decode(payload["probe"], config_cls)
        except (msgspec.ValidationError, ValueError, TypeError) as e:
            if not (payload.get("unparsed") and "missing required field" in str(e)):
                return [f"config: does not decode into {config_cls.__name__}: {e}"]
        return []
    if kind == BACKTEST_ENGINE:
        from nautilus_trader.backtest.config import BacktestEngineConfig, BacktestVenueConfig

        problems = []
        for name, data, cls in (("engine", payload["engine"], BacktestEngineConfig),
                                ("venue", payload["venue"], BacktestVenueConfig)):
            try:
                decode(data, cls)
            except (msgspec.ValidationError, ValueError, TypeError) as e:
                problems.append(f"{name}: does not decode into {cls.__name__}: {e}")
        return problems
    if kind == ENGINE_NODE:
        from services.engine.config import check_node_config

        return check_node_config(payload["node"])
    raise ValueError(f"unknown check {kind!r}")


def main() -> int:
    """Answer requests from stdin, one JSON line each, until stdin closes."""
    for line in sys.stdin:
        request = json.loads(line)
        for entry in reversed(request.get("path", [])):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        try:
            problems = _check(request["kind"], request["payload"])
        except Exception as e:  # an import or a check that fails outright is a problem too
            problems = [f"{type(e).__name__}: {e}"]
        sys.stdout.write(json.dumps(problems) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
