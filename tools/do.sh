#!/bin/bash
# Quick start, first command: installs what is missing, builds runsc, and
# runs the given command in a sandbox with `runsc do`.
#   tools/do.sh /bin/busybox echo hello
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh"
cd "$top"
bazel build --noshow_progress --ui_event_filters=-info,-stdout,-stderr //runsc >&2 \
  || { bazel build //runsc; exit 1; }
exec "$top/bazel-bin/runsc/runsc" do "$@"
