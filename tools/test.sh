#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with Swift (run as root: it installs the
# C libraries and caches PostgreSQL 14-18 server builds; see tools/install-servers.sh).
#
#   tools/test.sh                 build, then every test (unit and end-to-end on PG 14-18)
#   tools/test.sh --filter Tar    only tests whose name matches
#
# End-to-end tests start throwaway clusters as the postgres user under $PGKEEP_TEST_TMP
# (default /tmp/pgkeep-tests) and remove them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-servers.sh
echo "test: building"
swift build --build-tests 2>&1 | grep -Ev "^(\[[0-9]+/[0-9]+\]|Building|Compiling|Write|Planning)" || true
swift build --build-tests >/dev/null   # fail here, loudly, if the build did
tools/build-plugin.sh debug >/dev/null  # pgkeep-fd.so beside the pgkeep the tests run
mkdir -p "${PGKEEP_TEST_TMP:-/tmp/pgkeep-tests}"
# Serial: the end-to-end suites start servers and load them; on 2 cores that is enough at a time.
exec swift test --skip-build --no-parallel "$@"
