#!/bin/sh
# First start: a cluster owned by POSTGRES_USER (password POSTGRES_PASSWORD, required) with the
# database POSTGRES_DB; later starts reuse the volume. Connections from other containers need
# the password (scram-sha-256); local ones (pg_isready, psql in the container) are trusted.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
USER_NAME=${POSTGRES_USER:-postgres}
DB_NAME=${POSTGRES_DB:-$USER_NAME}
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_postgres "$BIN/initdb" -D "$PGDATA" -U "$USER_NAME" --pwfile="$pwfile" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$DB_NAME" != "postgres" ]; then  # initdb made "postgres" only
    echo "CREATE DATABASE \"$DB_NAME\" OWNER \"$USER_NAME\";" \
      | as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
