"""Time the first-start sample catalog generation (target: <= 30 s).

    python bench/bench_sample_catalog.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from services.catalog import CatalogService
from services.catalog.sample import generate_sample_catalog

TARGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    timings = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            generate_sample_catalog(Path(tmp) / "catalog")
            timings.append(time.perf_counter() - started)
            rows = sum(s.rows for s in CatalogService(str(Path(tmp) / "catalog")).series())
    best = min(timings)
    print(json.dumps({"rows": rows, "seconds": [round(t, 2) for t in timings], "best": round(best, 2),
                      "target": TARGET_SECONDS, "ok": best <= TARGET_SECONDS}, indent=2))
    return 0 if best <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
