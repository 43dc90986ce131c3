#!/usr/bin/env bash
# Build the two images compose.yaml runs, without a registry or PyPI inside Docker:
#   scripts/build-compose-images.sh [BASE_IMAGE]      (default python:3.12-slim)
# - nautilus-workbench:latest: the app, from the wheels of constraints.txt downloaded on the host
#   into ./wheelhouse for the base image's Python (the Dockerfile installs from there);
# - local/postgres:workbench: Debian's PostgreSQL on the same base (scripts/postgres-image), for
#   machines that cannot pull postgres:16; use it with POSTGRES_IMAGE=local/postgres:workbench.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${1:-python:3.12-slim}
[ -x .venv/bin/pip ] || ./run cli --help >/dev/null
scripts/engine-wheelhouse.sh "$BASE_IMAGE" wheelhouse ".[postgres]" "setuptools>=69" >/dev/null
echo "[compose-images] building nautilus-workbench:latest" >&2
docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t nautilus-workbench:latest . >&2
echo "[compose-images] building local/postgres:workbench" >&2
docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t local/postgres:workbench \
  scripts/postgres-image >&2
echo "nautilus-workbench:latest local/postgres:workbench"
