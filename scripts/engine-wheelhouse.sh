#!/usr/bin/env bash
# Download Python wheels on the host for an image build that cannot reach PyPI:
#   scripts/engine-wheelhouse.sh BASE_IMAGE [DEST [REQUIREMENT ...]]
# DEST defaults to build/engine-wheelhouse, the requirements to the engine image's
# (nautilus_trader[ib]); scripts/build-compose-images.sh passes the app's. The wheels match the
# base image's Python version and constraints.txt. Idempotent: pip skips wheels already there.
set -euo pipefail
BASE_IMAGE=${1:?usage: engine-wheelhouse.sh BASE_IMAGE [DEST [REQUIREMENT ...]]}
DEST=${2:-build/engine-wheelhouse}
shift $(( $# < 2 ? $# : 2 ))
[ $# -gt 0 ] || set -- "nautilus_trader[ib]==1.231.0"
PYVER=$(docker run --rm "$BASE_IMAGE" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
PIP=${PIP:-$(dirname "$0")/../.venv/bin/pip}
[ -x "$PIP" ] || PIP=pip3
mkdir -p "$DEST"
echo "[wheelhouse] Python $PYVER wheels for $BASE_IMAGE into $DEST: $*" >&2
# Several --platform tags: pip does not widen one manylinux tag to older ones.
PIP_CONFIG_FILE=/dev/null "$PIP" download --quiet --only-binary=:all: --python-version "$PYVER" \
  --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  -c "$(dirname "$0")/../constraints.txt" -d "$DEST" "$@" >&2
ls "$DEST"/*.whl | wc -l
