#!/usr/bin/env bash
# Build the libnfs test client test/native/bin/aegis-nfs from nfsclient.c.
# Needs gcc (or $CC), pkg-config and the libnfs headers (Debian: libnfs-dev).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${CC:-gcc}"

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build.sh: C compiler '$cc' not found; install it with: apt-get install gcc" >&2
  exit 1
fi
if ! command -v pkg-config >/dev/null 2>&1; then
  echo "build.sh: pkg-config not found; install it with: apt-get install pkg-config" >&2
  exit 1
fi
if ! pkg-config --exists libnfs; then
  echo "build.sh: libnfs development files not found by pkg-config;" \
    "install them with: apt-get install libnfs-dev" >&2
  exit 1
fi

mkdir -p "$here/bin"
# Compile to a temporary name first so an interrupted build never leaves a
# truncated binary that looks newer than the source.
tmp="$here/bin/aegis-nfs.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# shellcheck disable=SC2046 # pkg-config output is a list of separate flags
"$cc" -O2 -Wall -Wextra -std=gnu11 -o "$tmp" "$here/nfsclient.c" \
  $(pkg-config --cflags --libs libnfs)
mv -f "$tmp" "$here/bin/aegis-nfs"
echo "built $here/bin/aegis-nfs (libnfs $(pkg-config --modversion libnfs))"
