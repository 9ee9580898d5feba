#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the tests, on loopback only (127.0.0.1:55432, trust auth),
# installing Debian's postgresql first if it is missing. Idempotent: a running server is left as is.
set -euo pipefail
PORT=${SYNTH_PG_PORT:-55432}
DATA=${SYNTH_PG_DATA:-/tmp/synth-pg-data}
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_owner() {  # PostgreSQL refuses to run as root: use the postgres account when we are root
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
if [ "$(id -u)" = 0 ]; then mkdir -p "$DATA" && chown postgres "$DATA"; fi
[ -f "$DATA/PG_VERSION" ] || as_owner "$BIN/initdb -D $DATA -A trust -U postgres >/dev/null"
if ! as_owner "$BIN/pg_ctl -D $DATA status >/dev/null 2>&1"; then
  as_owner "$BIN/pg_ctl -D $DATA -w -l $DATA/server.log -o \"-c listen_addresses=127.0.0.1 -p $PORT -k /tmp\" start >/dev/null"
fi
psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='dagster_test'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE dagster_test"
echo "postgresql://postgres@127.0.0.1:$PORT/dagster_test"
