#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, on 127.0.0.1 only. Idempotent: installs Debian's
# `postgresql` if missing, creates a cluster once, starts it if stopped, and prints one line:
#   export CITYKIT_TEST_PG_URL=postgresql+psycopg://citykit:...@127.0.0.1:PORT/citykit
# Use as `eval "$(bash .ci/postgres.sh)"`. Everything else goes to the cluster's log, not stdout.
set -euo pipefail

PORT="${CITYKIT_PG_PORT:-54329}"
DIR="${CITYKIT_PG_DIR:-/tmp/citykit-pg}"
ROLE=citykit
DB=citykit

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")"

# PostgreSQL refuses to run as root: use the `postgres` account the Debian package creates.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
chmod 700 "$DIR"
DATA="$DIR/data"
SECRET="$DIR/password"

if [ ! -s "$SECRET" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$SECRET")
fi
PASSWORD="$(cat "$SECRET")"

if [ ! -f "$DATA/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=40" start >/dev/null
fi

psql_admin() { as_owner psql -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
fi
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
fi

echo "export CITYKIT_TEST_PG_URL=postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
