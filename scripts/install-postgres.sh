#!/usr/bin/env bash
# Install PostgreSQL from Debian if it is missing, start a cluster for the tests on a local
# port, and print its admin URL (for WORKBENCH_TEST_POSTGRES_URL) on the last line.
# Idempotent: a second run reuses the running cluster. Needs root (as in CI).
set -euo pipefail
PORT=${PGPORT:-55432}
DATA=${PGDATA_DIR:-/var/lib/postgresql/workbench-tests}
log() { echo "[install-postgres] $*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  log "installing postgresql from Debian"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

if ! as_postgres "$BIN/pg_isready -q -h 127.0.0.1 -p $PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "creating a cluster in $DATA"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA" 2>/dev/null || true
    as_postgres "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8 >/dev/null"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  as_postgres "$BIN/pg_ctl -D $DATA -o '-p $PORT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' -l $DATA/server.log -w start >/dev/null"
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
