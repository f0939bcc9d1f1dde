#!/bin/bash
# Runs ruff over the source tree as a test. The runfiles hold a symlink to
# pyproject.toml in the workspace; following it finds the tree to check, so
# the test sees every Python file without listing them as inputs. It is tagged
# "external" in BUILD.bazel so that Bazel never caches its result.
set -euo pipefail
config=$(readlink -f "${TEST_SRCDIR}/${TEST_WORKSPACE}/pyproject.toml")
cd "$(dirname "${config}")"
case "$1" in
  check) exec ruff check --no-cache . ;;
  format) exec ruff format --no-cache --check --diff . ;;
  *) echo "usage: $0 check|format" >&2; exit 2 ;;
esac
