#!/bin/bash
# Quick start, second command: installs what is missing and runs every test.
# Extra arguments are passed to `bazel test` (for example a target pattern).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh"
# The Debian root filesystem the end-to-end matrix runs programs on (cached).
"$top/tools/debian_rootfs.sh" >/dev/null
cd "$top"
if (($#)); then
  exec bazel test "$@"
fi
exec bazel test //...
