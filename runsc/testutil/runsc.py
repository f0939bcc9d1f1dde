"""Running this project's runsc from end-to-end tests, and wrappers that
container clients can run instead of it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from runsc.testutil import procs


def runsc_path() -> str:
    """Returns the absolute path of the runsc binary under test: $RUNSC, or
    //runsc in the test's runfiles."""
    if os.environ.get("RUNSC"):
        return os.path.abspath(os.environ["RUNSC"])
    workspace = os.environ.get("TEST_WORKSPACE", "pyvisor")
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            path = os.path.join(root, workspace, "runsc", "runsc")
            if os.path.exists(path):
                return os.path.abspath(path)
    # In a runfiles tree: WORKSPACE/runsc/testutil/runsc.py.
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "runsc")
    if os.path.isfile(path):
        return path
    raise FileNotFoundError("runsc not found: set RUNSC or run under Bazel")


def runfile(path: str) -> str:
    """Returns the absolute path of a workspace-relative runfile."""
    workspace = os.environ.get("TEST_WORKSPACE", "pyvisor")
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root and os.path.exists(os.path.join(root, workspace, path)):
            return os.path.join(root, workspace, path)
    return os.path.abspath(path)


class Runsc:
    """Runsc runs runsc verbs with a state root and a debug log directory.

    Args:
        root: the state root (--root).
        log_dir: where each runsc process writes its debug log.
        flags: further global flags.
    """

    def __init__(self, root: str, log_dir: str = "", flags: Sequence[str] = ()) -> None:
        self.path = runsc_path()
        self.root = root
        self.log_dir = log_dir
        self.flags = list(flags)
        # Sandbox pid namespaces seen, to check that nothing outlives them.
        self.namespaces: set[str] = set()

    def argv(self, *args: str) -> list[str]:
        """Returns the command line of a verb."""
        flags = [f"--root={self.root}", *self.flags]
        if self.log_dir:
            flags += ["--debug", f"--debug-log={self.log_dir.rstrip('/')}/"]
        return [self.path, *flags, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess:
        """Runs a verb; captures its output unless told otherwise."""
        kw.setdefault("capture_output", True)
        proc = subprocess.run(
            self.argv(*args), timeout=timeout, check=False, text=True, **kw
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"runsc {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stdout}{proc.stderr}"
            )
        return proc

    def state(self, container_id: str) -> dict[str, Any]:
        """Returns `runsc state` as a dict."""
        return json.loads(self.run("state", container_id).stdout)

    def track(self, pid: int) -> str:
        """Records the PID namespace of a sandbox process; returns it."""
        ns = procs.pid_namespace(pid)
        if ns:
            self.namespaces.add(ns)
        return ns

    def leftovers(self) -> list[str]:
        """Describes processes still alive in any tracked sandbox namespace
        (after a grace period)."""
        return procs.leftovers(self.namespaces)


WRAPPER = """#!/bin/sh
# A runsc for container clients in tests: adds flags, and records the pid
# and PID namespace of each sandbox that create (or run --detach) makes in
# {record}. A foreground run has ended when it returns: its pid may belong
# to somebody else's process by then, so it is not recorded.
pidfile=""
create=""
run=""
detach=""
prev=""
for a in "$@"; do
  case "$prev" in --pid-file|-pid-file) pidfile="$a" ;; esac
  case "$a" in
    --pid-file=*|-pid-file=*) pidfile="${{a#*=}}" ;;
    create) create=1 ;;
    run) run=1 ;;
    -d|--detach|-detach) detach=1 ;;
  esac
  prev="$a"
done
if [ -n "$run" ] && [ -n "$detach" ]; then create=1; fi
{runsc} {flags} "$@"
rc=$?
if [ -n "$create" ] && [ -n "$pidfile" ] && [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  echo "$pid $(readlink /proc/$pid/ns/pid)" >> {record}
fi
echo "$rc $*" >> {record}.calls
exit $rc
"""


def write_wrapper(path: str, record: str, flags: Sequence[str] = ()) -> str:
    """Writes an executable wrapper script named path (name it runsc: podman
    passes --log only to runtimes named runc, crun or runsc)."""
    text = WRAPPER.format(runsc=runsc_path(), flags=" ".join(flags), record=record)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def recorded_namespaces(record: str) -> dict[str, int]:
    """Returns the sandbox PID namespaces a wrapper recorded, each with the
    pid of the sandbox that is its init."""
    try:
        with open(record) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return {}
    fields = [ln.split() for ln in lines]
    return {f[1]: int(f[0]) for f in fields if len(f) == 2}


def recorded_calls(record: str) -> list[str]:
    """Returns the runsc command lines a wrapper saw, with exit statuses."""
    try:
        with open(record + ".calls") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []
