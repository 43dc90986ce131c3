"""What authorisation costs an API call, in one run (target: <= 2 ms added, median of 1,000).

The served app (in process, over ASGI) answers the same requests alternately call by call: as
shipped (bearer token looked up and checked, the per-token rate limit, the service's role check
with its owner lookup), and with the token check replaced by a fixed principal and a service
authoriser that allows everything. The difference of the medians is what authorisation adds.

    python bench/bench_auth.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

os.environ.setdefault("WORKBENCH_API_CONTROL_RATE", "1000000/minute")  # time, not limit
from app.api.deps import caller, control_caller  # noqa: E402
from app.server import ServeOptions, create_app  # noqa: E402
from services.db import BacktestRunRow  # noqa: E402
from services.identity.principal import Principal  # noqa: E402
from services.workbench import Workbench  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _AllowAll:
    """A stand-in authoriser: the same interface, no check."""

    def __init__(self, real) -> None:
        self.audit, self.default = real.audit, real.default

    def resolve(self, principal):
        return principal

    def require(self, principal, *_args, **_kwargs):
        return principal

    def allows(self, *_args, **_kwargs):
        return True, ""


ROUTES = {"read": ("get", "/api/v1/nautilus/engine/backtests?limit=5"),
          "control": ("delete", "/api/v1/nautilus/engine/backtest/bench-run")}


def _call(client: TestClient, route: str, headers: dict) -> float:
    method, path = ROUTES[route]
    started = time.perf_counter()
    response = client.request(method, path, headers=headers)
    took = (time.perf_counter() - started) * 1000
    assert response.status_code in (200, 409), response.text
    return took


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(samples),
            "p95_ms": statistics.quantiles(samples, n=20)[18]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    wb = Workbench.open(state_dir=home / "state", catalog=str(home / "catalog"),
                        default_principal=None)
    wb.users.add("researcher", ["researcher"], "a bench password", principal=Principal.local())
    _, token = wb.tokens.create("bench", username="researcher", principal=Principal.local())
    now = datetime.now(UTC)
    with wb.database.session() as session:  # a finished run: cancelling it answers 409
        session.add(BacktestRunRow(
            run_id="bench-run", status="Failed", strategy="ema_cross", instrument_id="X.SIM",
            bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL", start=now, end=now, spec={},
            run_folder=str(home / "run"), actor="researcher", created_at=now, currency="USD"))
    principal = wb.tokens.authenticate(token)
    gate = create_app(wb, ServeOptions(port=8000))
    real, allow_all = wb.backtests._auth, _AllowAll(wb.backtests._auth)

    def checks(on: bool) -> None:
        """Switch the token check and the service's role check on or off."""
        overrides = gate.app.dependency_overrides
        overrides.clear()
        if not on:
            overrides[caller] = overrides[control_caller] = lambda: principal
        wb.backtests._auth = real if on else allow_all

    headers = {"Authorization": f"Bearer {token}"}
    samples = {(kind, route): [] for kind in ("with", "without") for route in ROUTES}
    with TestClient(gate, base_url="http://localhost:8000") as client:
        for route in ROUTES:  # warm up
            for on in (True, False) * 25:
                checks(on)
                _call(client, route, headers)
        # Alternate call by call, so that load from elsewhere hits both alike.
        for _ in range(args.calls):
            for route in ROUTES:
                checks(True)
                samples[("with", route)].append(_call(client, route, headers))
                checks(False)
                samples[("without", route)].append(_call(client, route, {}))
    stats = {f"{kind}_{route}": _summary(v) for (kind, route), v in samples.items()}
    result = {
        "calls": args.calls, **stats,
        "added_read_ms": stats["with_read"]["median_ms"] - stats["without_read"]["median_ms"],
        "added_control_ms": (stats["with_control"]["median_ms"]
                             - stats["without_control"]["median_ms"]),
        "target_ms": 2.0,
    }
    result["passed"] = max(result["added_read_ms"], result["added_control_ms"]) <= 2.0
    out = PROJECT_ROOT / "bench" / "results" / "auth.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
