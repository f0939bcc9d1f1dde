"""Tests of the sandbox's host isolation: with the gofer serving the root,
the sentry opens no host path once the application runs, and the guard that
proves it (--TESTONLY-forbid-host-open) really fires."""

from __future__ import annotations

import os
import signal
import sys

from runsc.boot import host_path_guard
from runsc.boot.sandbox import ProcessSpec, Sandbox
from runsc.config import Config
from runsc.sandbox import gofer
from runsc.sandbox.launch import wait_status_to_exit_code


def run_in_child(
    config: Config, root: str | None, gofer_fds: list[int], argv: list[str], out: int
) -> int:
    """Runs argv in a sandbox in a forked child, with the guard installed
    before the application starts; returns the child's wait status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sandbox = Sandbox(config, root, gofer_fds=gofer_fds)
            t = sandbox.create_process(
                ProcessSpec(
                    argv=argv,
                    env=["PATH=/bin:/usr/bin"],
                    cwd="/",
                    executable=argv[0],
                    stdio=[0, out, 2],
                )
            )
            host_path_guard.install()
            sandbox.start_process(t)
            status = sandbox.wait()
            assert status is not None
            code = wait_status_to_exit_code(status)
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def test_gofer_root_needs_no_host_path(tmp_path):
    config = Config(root=str(tmp_path))
    proc, conns = gofer.start(config, "/", read_only=True)
    r, w = os.pipe()
    status = run_in_child(
        config, None, [c.fileno() for c in conns], ["/bin/busybox", "ls", "/"], w
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
    config = Config(root=str(tmp_path))
    status = run_in_child(config, "/", [], ["/bin/busybox", "ls", "/"], 1)
    assert os.WIFSIGNALED(status), status
    assert os.WTERMSIG(status) == signal.SIGSYS
