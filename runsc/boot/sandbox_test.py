"""Tests of the sandbox's host isolation: after start-up the sentry opens no
host path, and the guard that proves it really fires."""

from __future__ import annotations

import os
import signal
import sys

from runsc.boot import sandbox
from runsc.config import Config
from runsc.fsgofer import launch


def run_in_child(config: Config, spec: sandbox.ProcessSpec) -> int:
    """Runs a sandbox in a forked child, as `runsc do` does; returns the
    child's wait status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            status = sandbox.run(config, spec)
            code = sandbox.wait_status_to_exit_code(status)
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def spec(argv: list[str], gofer_fds: list[int], stdout: int) -> sandbox.ProcessSpec:
    return sandbox.ProcessSpec(
        argv=argv,
        env=["PATH=/bin:/usr/bin"],
        cwd="/",
        executable=argv[0],
        stdio=[0, stdout, 2],
        gofer_fds=gofer_fds,
    )


def test_gofer_root_needs_no_host_path(tmp_path):
    config = Config(root=str(tmp_path), testonly_forbid_host_open=True)
    proc, conns = launch.start(config, "/", read_only=True)
    r, w = os.pipe()
    status = run_in_child(
        config, spec(["/bin/busybox", "ls", "/"], [c.fileno() for c in conns], w)
    )
    for c in conns:
        c.close()
    os.close(w)
    out = os.read(r, 1 << 16)
    os.close(r)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert b"usr" in out.split()
    assert proc.wait(timeout=30) == 0


def test_guard_kills_a_host_path_lookup(tmp_path):
    # Without a gofer the root is hostfs, which opens host paths as the
    # application looks things up: the guard must stop the sandbox.
    config = Config(root=str(tmp_path), testonly_forbid_host_open=True)
    status = run_in_child(config, spec(["/bin/busybox", "ls", "/"], [], 1))
    assert os.WIFSIGNALED(status), status
    assert os.WTERMSIG(status) == signal.SIGSYS
