"""Memory use of sandboxed programs, measured on the host.

The sandbox keeps all application memory in one memfd (the MemoryFile); the
host's count of that file's blocks is the memory the sandbox really uses.
These tests run a program under runsc, wait until it reports that it has
touched its memory, and read that count from /proc of the sandbox process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_MIB = 1 << 20


def _runfile(path: str) -> str:
    return os.path.join(os.environ.get("TEST_SRCDIR", ""), "pyvisor", path)


RUNSC = _runfile("runsc/runsc")


def _descendants(pid: int) -> list[int]:
    out = [pid]
    i = 0
    while i < len(out):
        try:
            with open(f"/proc/{out[i]}/task/{out[i]}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
        i += 1
    return out


def memory_file_bytes(root_pid: int) -> int:
    """Returns the populated bytes of the sandbox's MemoryFile."""
    for pid in _descendants(root_pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if os.readlink(path).startswith("/memfd:runsc-memory"):
                    return os.stat(path).st_blocks * 512
            except OSError:
                continue
    raise AssertionError("no MemoryFile found under the runsc process")


@contextmanager
def sandboxed(program: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Runs program under runsc until it prints its first line; yields the
    process and that line, then closes its input and waits for it."""
    root = tempfile.mkdtemp(prefix="runsc-root-")
    logs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.mkdtemp()
    proc = subprocess.Popen(
        [
            RUNSC,
            f"--root={root}",
            "--debug",
            f"--debug-log={logs}/",
            "do",
            _runfile(program),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline().strip()
        yield proc, line
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_sparse_touch_of_1_gib_uses_memory_in_proportion() -> None:
    with sandboxed("test/e2e/memory/sparse_touch") as (proc, line):
        assert line == "ready"
        used = memory_file_bytes(proc.pid)
    # 1024 pages were written; the program and its stack take a few more.
    assert used < 64 * _MIB, used


def test_fork_of_256_mib_does_not_copy_it() -> None:
    with sandboxed("test/e2e/memory/fork_memory") as (proc, line):
        if line == "nofork":
            pytest.skip("fork(2) is not available in the sandbox yet")
        assert line == "ready"
        used = memory_file_bytes(proc.pid)
    assert used >= 256 * _MIB, used
    # A copy at fork would double it.
    assert used < 320 * _MIB, used
