#!/bin/bash
# Quick start, second command: installs what is missing and runs every test.
# Extra arguments are passed to `bazel test` (for example a target pattern).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh"
# The Debian root filesystem the end-to-end matrix runs programs on (cached).
# Without it (no mirror reachable) the Debian half of the matrix skips, saying
# why; the rest of the tests still run.
"$top/tools/debian_rootfs.sh" >/dev/null ||
  echo "test: no Debian root; the Debian programs matrix will skip" >&2
cd "$top"
if (($#)); then
  exec bazel test "$@"
fi
exec bazel test //...
