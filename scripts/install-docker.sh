#!/usr/bin/env bash
# Make a Docker engine usable for the engine tests and print a Python base image on the last line.
#   1. install the Docker engine from Debian (docker.io) if it is missing, and start dockerd
#      when no daemon answers (needs root, as in CI);
#   2. use python:3.12-slim when it is present or can be pulled; on machines with no registry,
#      build a local Debian base image with Python 3 + venv + tini instead (mmdebstrap, ~30 s).
# Idempotent: a second run reuses the daemon and the image.
set -euo pipefail
LOCAL_BASE=${LOCAL_BASE:-local/python3-debian:trixie}
SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
log() { echo "[install-docker] $*" >&2; }

if ! command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
fi

if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  log "installing docker-compose from Debian (checks compose.yaml)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2 || log "no docker-compose package"
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid nohup dockerd >/tmp/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /tmp/dockerd.log"; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi

if docker image inspect python:3.12-slim >/dev/null 2>&1 || timeout 60 docker pull -q python:3.12-slim >/dev/null 2>&1; then
  echo python:3.12-slim
  exit 0
fi
if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
  log "no registry reachable: building $LOCAL_BASE from Debian $SUITE"
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
  fi
  rootfs=$(mktemp /tmp/workbench-rootfs.XXXXXX.tar)
  mmdebstrap --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=python3,python3-venv,tini,ca-certificates \
    "$SUITE" - "deb $MIRROR $SUITE main" >"$rootfs" 2>/tmp/mmdebstrap.log \
    || { tail -20 /tmp/mmdebstrap.log >&2; exit 1; }
  docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$rootfs" "$LOCAL_BASE" >&2
  rm -f "$rootfs"
fi
echo "$LOCAL_BASE"
