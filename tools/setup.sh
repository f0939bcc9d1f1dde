#!/bin/bash
# Installs what the build and the tests need on a Debian 12 machine, as root:
# Debian packages and the pinned Python packages. Safe to run repeatedly; it
# does nothing when everything is present.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

debian_packages=(
  bazel-bootstrap
  bazel-rules-java
  busybox-static
  debootstrap
  file
  g++
  gdb
  googletest
  libatomic1
  libgmock-dev
  libgtest-dev
  protobuf-compiler
  runsc
  sqlite3
  strace
  # Container clients that test/e2e drives runsc with (and runc, to compare
  # against). Installing them starts no daemon; the tests start their own.
  conmon
  containerd
  docker.io
  podman
  runc
  umoci
)

missing=()
for p in "${debian_packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pip is quiet and offline when every pinned version is already installed.
if ! python3 - "$top/requirements.txt" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "setup: installing Python packages from requirements.txt" >&2
  python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore -r "$top/requirements.txt"
fi
