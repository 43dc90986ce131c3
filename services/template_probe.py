"""Template checks that call into NautilusTrader run here, in a child process.

Decoding a config into NautilusTrader's classes constructs identifiers and enums in its Rust
core, where a malformed value can panic, and a panic aborts the process it happens in. The
workbench's own checks (``services.identifiers``) come first and catch what is known; this is
the net under them, so that no template can take the server down. Results are cached per
process by the hash of what was checked, so a template costs one child process per content.

Run as ``python -m services.template_probe`` with a JSON request on stdin; it prints a JSON
list of problems.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading

STRATEGY_CONFIG, BACKTEST_ENGINE, ENGINE_NODE = "strategy_config", "backtest_engine", "engine_node"
TIMEOUT_S = 120.0

_cache: dict[str, tuple[str, ...]] = {}
_cache_lock = threading.Lock()


def nautilus_problems(kind: str, payload: dict) -> list[str]:
    """Problems NautilusTrader finds decoding ``payload`` (see :func:`_check`), from a child
    process; an abort there is reported as a problem, never felt here."""
    request = json.dumps({"kind": kind, "payload": payload}, sort_keys=True, default=str)
    key = hashlib.sha256(request.encode()).hexdigest()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return list(cached)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "RUST_BACKTRACE": "0"}  # a panic then prints its message, not 30 frames
    try:
        done = subprocess.run([sys.executable, "-m", "services.template_probe"], input=request,
                              capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return [f"NautilusTrader did not finish checking it within {TIMEOUT_S:.0f} s"]
    if done.returncode == 0:
        problems = tuple(json.loads(done.stdout))
    else:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        panic = next((i for i, line in enumerate(lines) if " panicked at " in line), None)
        last = lines[panic + 1] if panic is not None and panic + 1 < len(lines) else (
            lines[-1] if lines else "")
        how = (f"aborted ({signal.Signals(-done.returncode).name})" if done.returncode < 0
               else f"failed (exit code {done.returncode})")
        problems = (f"NautilusTrader {how} while decoding it: {last[:500]}",)
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
    request = json.loads(sys.stdin.read())
    print(json.dumps(_check(request["kind"], request["payload"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
