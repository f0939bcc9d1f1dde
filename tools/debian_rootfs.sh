#!/bin/bash
# Makes (once) and prints the path of a Debian bookworm root filesystem for
# the end-to-end tests: `debootstrap --variant=minbase` plus the programs the
# test matrix runs. The result is cached under /var/cache/pyvisor and never
# committed; delete the directory to rebuild it.
set -euo pipefail
cache=${PYVISOR_CACHE:-/var/cache/pyvisor}
root=$cache/debian-bookworm-minbase
# Changing this list changes the stamp, so the root is rebuilt.
include=bash,coreutils,findutils,grep,sed,mawk,tar,gzip,xz-utils,python3,perl,sqlite3,gcc,libc6-dev,make,git,openssl,file,nodejs,busybox-static,procps
stamp="$root/.pyvisor-stamp"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$include" ]]; then
  echo "$root"
  exit 0
fi
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' \
  /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/debian.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "debian_rootfs: debootstrap minbase bookworm into $root (a few minutes)" >&2
debootstrap --variant=minbase --include="$include" bookworm "$tmp/root" \
  "$mirror" >"$tmp/log" 2>&1 || {
  tail -20 "$tmp/log" >&2
  exit 1
}
rm -rf "$root"
mv "$tmp/root" "$root"
echo "$include" >"$stamp"
echo "$root"
