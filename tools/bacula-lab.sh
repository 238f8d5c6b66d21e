#!/usr/bin/env bash
# A private Bacula 9.6 lab on loopback: Debian's real bacula-dir, bacula-sd and bacula-fd with
# their own configs, a SQLite catalog and file storage under one directory, and pgkeep-fd.so
# installed in its plugin directory. The tests and tools/bench use it; so can you, to try the
# plugin without touching a real Bacula:
#
#   tools/bacula-lab.sh start LAB [JOBS.conf]   write the configs, make the catalog, start the daemons
#   tools/bacula-lab.sh console LAB             bconsole on the lab (commands on stdin)
#   tools/bacula-lab.sh stop LAB                stop the daemons (the directory stays)
#
# JOBS.conf is included into the Director's config: FileSets and Jobs naming Client "lab-fd",
# Storage "File", Pool "Default", Messages "Standard" (a job "RestoreFiles" exists). pgkeep is
# $PGKEEP, else .build/debug/pgkeep; its pgkeep-fd.so must be beside it (tools/build-plugin.sh).
# Needs: bacula-director bacula-director-sqlite3 bacula-sd bacula-fd bacula-console sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
lab=${2:-}
[ -n "$command" ] && [ -n "$lab" ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$lab"
lab=$(cd "$lab" && pwd)

# Sets variable $1 to a port nothing listens on, and none of those already taken for this lab.
taken=""
pick_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    case " $taken " in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then taken="$taken $port"; printf -v "$1" '%s' "$port"; return; fi
  done
  echo "bacula-lab: no free port" >&2
  exit 1
}

# Waits for daemon $2 to listen on port $1: false if it exits first (another process took the
# port between the choice and its bind) or is not listening after 30 s (a loaded machine).
wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$(cat "$lab/$2.pid")" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

stop_lab() {
  for daemon in dir fd sd; do
    if [ -f "$lab/$daemon.pid" ]; then
      pid=$(cat "$lab/$daemon.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$lab/$daemon.pid"
    fi
  done
}

case "$command" in
start)
  jobs=${3:-}
  stop_lab
  pgkeep=${PGKEEP:-$PWD/.build/debug/pgkeep}
  mkdir -p "$lab"/{dir,sd,fd,plugins,volumes,restores}
  "$pgkeep" bacula install-plugin --plugin-dir "$lab/plugins" >/dev/null
  for attempt in 1 2 3; do
  pick_port dir_port; pick_port fd_port; pick_port sd_port
  rm -f "$lab"/{sd,fd,dir}.out
  if [ -n "$jobs" ]; then cp "$jobs" "$lab/jobs.conf"; else : > "$lab/jobs.conf"; fi
  cat > "$lab/dir.conf" <<EOF
Director {
  Name = lab-dir
  DIRport = $dir_port
  DirAddress = 127.0.0.1
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "$lab/dir"
  PidDirectory = "$lab/dir"
  Maximum Concurrent Jobs = 5
  Password = "lab-dir-password"
  Messages = Daemon
}
Catalog {
  Name = MyCatalog
  dbname = "bacula"; dbuser = ""; dbpassword = ""
}
Client {
  Name = lab-fd
  Address = 127.0.0.1
  FDPort = $fd_port
  Catalog = MyCatalog
  Password = "lab-fd-password"
  AutoPrune = no
}
Storage {
  Name = File
  Address = 127.0.0.1
  SDPort = $sd_port
  Password = "lab-sd-password"
  Device = FileStorage
  Media Type = File
}
Pool {
  Name = Default
  Pool Type = Backup
  Recycle = yes
  AutoPrune = no
  Volume Retention = 365 days
  Maximum Volume Bytes = 50G
  Label Format = "Vol-"
  Maximum Volumes = 100
}
Messages {
  Name = Standard
  console = all, !skipped, !saved
  append = "$lab/dir/log" = all, !skipped
  catalog = all
}
Messages {
  Name = Daemon
  console = all, !skipped, !saved
  append = "$lab/dir/log" = all, !skipped
}
FileSet {
  Name = "lab-empty"
  Include {
    Options { signature = MD5 }
  }
}
Job {
  Name = "RestoreFiles"
  Type = Restore
  Client = lab-fd
  FileSet = "lab-empty"
  Storage = File
  Pool = Default
  Messages = Standard
  Where = $lab/restores
}
@$lab/jobs.conf
EOF
  cat > "$lab/sd.conf" <<EOF
Storage {
  Name = lab-sd
  SDPort = $sd_port
  SDAddress = 127.0.0.1
  WorkingDirectory = "$lab/sd"
  Pid Directory = "$lab/sd"
  Maximum Concurrent Jobs = 5
}
Director {
  Name = lab-dir
  Password = "lab-sd-password"
}
Device {
  Name = FileStorage
  Media Type = File
  Archive Device = $lab/volumes
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
}
Messages {
  Name = Standard
  director = lab-dir = all
}
EOF
  cat > "$lab/fd.conf" <<EOF
Director {
  Name = lab-dir
  Password = "lab-fd-password"
}
FileDaemon {
  Name = lab-fd
  FDport = $fd_port
  FDAddress = 127.0.0.1
  WorkingDirectory = $lab/fd
  Pid Directory = $lab/fd
  Maximum Concurrent Jobs = 5
  Plugin Directory = $lab/plugins
}
Messages {
  Name = Standard
  director = lab-dir = all, !skipped, !restored
}
EOF
  cat > "$lab/bconsole.conf" <<EOF
Director {
  Name = lab-dir
  DIRport = $dir_port
  address = 127.0.0.1
  Password = "lab-dir-password"
}
EOF
  # Debian's catalog script, pointed at this lab (it hard-codes /var/lib/bacula and a placeholder name).
  if [ ! -f "$lab/dir/bacula.db" ]; then
    sed -e "s|^cd /var/lib/bacula|cd $lab/dir|" -e "s|^db_name=.*|db_name=bacula|" \
      /usr/share/bacula-director/make_sqlite3_tables > "$lab/make_tables.sh"
    sh "$lab/make_tables.sh" >/dev/null
  fi
  /usr/sbin/bacula-dir -t -c "$lab/dir.conf"
  /usr/sbin/bacula-sd -f -c "$lab/sd.conf" > "$lab/sd.out" 2>&1 & echo $! > "$lab/sd.pid"
  /usr/sbin/bacula-fd -f -c "$lab/fd.conf" > "$lab/fd.out" 2>&1 & echo $! > "$lab/fd.pid"
  if wait_port "$sd_port" sd && wait_port "$fd_port" fd; then
    /usr/sbin/bacula-dir -f -c "$lab/dir.conf" > "$lab/dir.out" 2>&1 & echo $! > "$lab/dir.pid"
    if wait_port "$dir_port" dir; then
      echo "bacula-lab: $lab (director $dir_port, fd $fd_port, sd $sd_port)"
      exit 0
    fi
  fi
  # Ports are chosen free and bound a moment later: another lab or process may have taken one.
  echo "bacula-lab: a daemon did not come up on ports $dir_port/$fd_port/$sd_port (attempt $attempt of 3)" >&2
  for daemon in sd fd dir; do
    if [ -s "$lab/$daemon.out" ]; then sed "s/^/  $daemon: /" "$lab/$daemon.out" | tail -n 5 >&2; fi
  done
  stop_lab
  done
  echo "bacula-lab: the daemons did not start (see $lab/*.out)" >&2
  exit 1
  ;;
console)
  exec bconsole -c "$lab/bconsole.conf"
  ;;
stop)
  stop_lab
  ;;
*)
  echo "bacula-lab: start, console or stop" >&2
  exit 2
  ;;
esac
