#!/bin/sh
# Stands in for Bazel's coverage report generator, which is fetched from the
# network by default. The project does not produce merged coverage reports.
echo "coverage reports are not available in this offline build" >&2
exit 1
