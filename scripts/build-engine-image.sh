#!/usr/bin/env bash
# Build the engine image the app and the engine tests use (nautilus-workbench-engine:1.231.0)
# from a wheelhouse downloaded on the host, so the build needs no PyPI access inside Docker:
#   scripts/build-engine-image.sh [BASE_IMAGE]        (default python:3.12-slim)
# Online machines can also run `nautilus-workbench engine build-image` directly.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${1:-python:3.12-slim}
[ -x .venv/bin/nautilus-workbench ] || ./run cli --help >/dev/null
scripts/engine-wheelhouse.sh "$BASE_IMAGE" build/engine-wheelhouse >/dev/null
.venv/bin/nautilus-workbench engine build-image --base-image "$BASE_IMAGE" \
  --wheelhouse build/engine-wheelhouse --quiet
