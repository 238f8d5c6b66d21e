#!/usr/bin/env bash
# Builds pgkeep-fd.so, the Bacula File Daemon plugin, with the system C compiler: a small shared
# object linked to libc alone (Bacula loads it into bacula-fd). It goes next to the pgkeep binary
# of the given build (debug or release), where `pgkeep bacula install-plugin` finds it.
#
#   tools/build-plugin.sh [debug|release]      default: debug
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${1:-debug}
output=.build/$configuration/pgkeep-fd.so
mkdir -p "$(dirname "$output")"
compiler=${CC:-$(command -v cc || command -v clang)}
"$compiler" -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I Sources/CBaculaFD/include -o "$output.tmp" Sources/CBaculaFD/frames.c Sources/CBaculaFD/pgkeep-fd.c
# Only loadPlugin and unloadPlugin are for Bacula to see.
mv "$output.tmp" "$output"
echo "build-plugin: $output"
