"""Tests that the host path guard really kills a process that names a host
path, and leaves descriptor-based calls alone."""

from __future__ import annotations

import os
import signal
import sys

from runsc.boot import host_path_guard


def in_child(fn) -> int:
    """Runs fn in a forked child with the guard installed; returns the wait
    status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            host_path_guard.install()
            code = fn()
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def killed_by_sigsys(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_descriptor_calls_allowed(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    r, w = os.pipe()

    def child() -> int:
        st = os.fstat(fd)
        os.write(w, str(st.st_ino).encode())
        return 0

    assert in_child(child) == 0
    os.close(w)
    assert os.read(r, 100) == str(os.stat(tmp_path).st_ino).encode()
    os.close(r)
    os.close(fd)


def test_open_kills():
    assert killed_by_sigsys(in_child(lambda: os.open("/etc/hostname", os.O_RDONLY)))


def test_openat_relative_kills(tmp_path):
    d = os.open(tmp_path, os.O_RDONLY)
    assert killed_by_sigsys(in_child(lambda: os.open("x", os.O_CREAT, dir_fd=d)))
    os.close(d)


def test_stat_by_path_kills():
    assert killed_by_sigsys(in_child(lambda: os.stat("/")))


def test_lazy_import_kills():
    def child() -> int:
        import this  # noqa: F401, PLC0415 - the import is the point

        return 0

    assert "this" not in sys.modules
    assert killed_by_sigsys(in_child(child))


def test_exec_kills():
    assert killed_by_sigsys(in_child(lambda: os.execv("/bin/true", ["true"])))
