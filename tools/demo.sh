#!/usr/bin/env bash
# pgkeep in one command, on a fresh Debian 12 machine with Swift (run as root):
# installs what it needs, builds pgkeep, starts a throwaway PostgreSQL cluster with some data
# (and a user tablespace), backs it up with `pgkeep backup` while pgbench writes to it, verifies
# the backup with the server's own pg_verifybackup, and says where it is and how long it took.
#
#   tools/demo.sh            PostgreSQL 17 (set PGKEEP_DEMO_VERSION=14..18 for another)
#
# Everything lives under $PGKEEP_DEMO_DIR (default /tmp/pgkeep-demo); the cluster is stopped at
# the end, the backup is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${PGKEEP_DEMO_VERSION:-17}
DEMO=${PGKEEP_DEMO_DIR:-/tmp/pgkeep-demo}
CACHE=${PGKEEP_SERVER_CACHE:-/var/cache/pgkeep/servers}

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and runs the cluster as the postgres user)" >&2; exit 2; }
tools/install-servers.sh "$VERSION"
BIN="$CACHE/$VERSION/bin"

echo "demo: building pgkeep (release)"
swift build -c release --product pgkeep 2>&1 | grep -E "error|warning: unre|Compiling pgkeep|Build complete" || true
PGKEEP="$(swift build -c release --show-bin-path)/pgkeep"
[ -x "$PGKEEP" ] || { echo "demo: build failed" >&2; exit 1; }

as_postgres() { runuser -u postgres -- "$@"; }
if [ -f "$DEMO/data/postmaster.pid" ]; then as_postgres "$BIN/pg_ctl" -D "$DEMO/data" -m immediate stop >/dev/null 2>&1 || true; fi
rm -rf "$DEMO"
mkdir -p "$DEMO/sock" "$DEMO/tablespace"
chown -R postgres:postgres "$DEMO"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "demo: starting a throwaway PostgreSQL $VERSION cluster in $DEMO/data (port $PORT)"
as_postgres "$BIN/initdb" -D "$DEMO/data" --data-checksums -A trust -U postgres >/dev/null
cat >> "$DEMO/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DEMO/sock'
wal_level = replica
max_wal_senders = 10
CONF
as_postgres "$BIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null
trap 'as_postgres "$BIN/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true' EXIT
CONN=(-h "$DEMO/sock" -p "$PORT" -U postgres)
"$BIN/psql" "${CONN[@]}" -Xq -c "CREATE TABLESPACE demo_space LOCATION '$DEMO/tablespace'"
echo "demo: loading data (pgbench scale 20, about 300 MB, in the tablespace)"
"$BIN/pgbench" "${CONN[@]}" -i -q -s 20 --tablespace=demo_space postgres >/dev/null 2>&1

echo "demo: pgbench writes while pgkeep backs up"
"$BIN/pgbench" "${CONN[@]}" -n -c 2 -T 15 postgres >/dev/null 2>&1 &
LOAD=$!
sleep 1
START=$(date +%s.%N)
"$PGKEEP" backup "${CONN[@]}" -D "$DEMO/backup" -T "$DEMO/tablespace=$DEMO/backup-tablespace" -c fast -P -v
END=$(date +%s.%N)
wait $LOAD || true

echo "demo: verifying with pg_verifybackup $VERSION"
"$BIN/pg_verifybackup" "$DEMO/backup"
echo
echo "demo: backup of PostgreSQL $VERSION is in $DEMO/backup (tablespace in $DEMO/backup-tablespace)"
printf 'demo: %s written in %.1f s\n' "$(du -shc "$DEMO/backup" "$DEMO/backup-tablespace" | tail -n1 | cut -f1)" \
  "$(awk "BEGIN { print $END - $START }")"
echo "demo: to start it: chown -R postgres $DEMO/backup $DEMO/backup-tablespace &&"
echo "      runuser -u postgres -- $BIN/pg_ctl -D $DEMO/backup -o '-p <free port>' start"
