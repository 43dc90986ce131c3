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
PYVER=$(docker run --rm "$BASE_IMAGE" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
PIP=.venv/bin/pip
[ -x "$PIP" ] || ./run cli --help >/dev/null
echo "[compose-images] Python $PYVER wheels for $BASE_IMAGE into wheelhouse/" >&2
# Several --platform tags: pip does not widen one manylinux tag to older ones.
PIP_CONFIG_FILE=/dev/null "$PIP" download --quiet --only-binary=:all: --python-version "$PYVER" \
  --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  -c constraints.txt -d wheelhouse ".[postgres]" "setuptools>=69" >&2
echo "[compose-images] building nautilus-workbench:latest" >&2
docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t nautilus-workbench:latest . >&2
echo "[compose-images] building local/postgres:workbench" >&2
docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t local/postgres:workbench \
  scripts/postgres-image >&2
echo "nautilus-workbench:latest local/postgres:workbench"
