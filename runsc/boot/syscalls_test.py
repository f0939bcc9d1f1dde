"""Tests for the ctypes system call wrappers."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from pkg.abi.linux import capability as C
from runsc.boot import syscalls


def test_capget_reports_this_process() -> None:
    effective, permitted, _ = syscalls.capget()
    with open("/proc/self/status") as f:
        status = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    assert effective == int(status["CapEff"], 16)
    assert permitted == int(status["CapPrm"], 16)


def test_errors_raise_oserror() -> None:
    with pytest.raises(OSError) as e:
        syscalls.setns(-1, 0)
    assert e.value.errno == errno.EBADF


def test_openat2_resolves_in_root(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "prog").write_text("x")
    # An absolute symlink is resolved inside the root, not on the host.
    os.symlink("/bin/prog", tmp_path / "link")
    os.symlink("../../../../../../etc/passwd", tmp_path / "escape")
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = syscalls.openat2(root, "/link", os.O_RDONLY, 0, syscalls.RESOLVE_IN_ROOT)
        assert os.read(fd, 10) == b"x"
        os.close(fd)
        with pytest.raises(OSError) as e:
            syscalls.openat2(root, "/escape", os.O_RDONLY, 0, syscalls.RESOLVE_IN_ROOT)
        assert e.value.errno == errno.ENOENT
    finally:
        os.close(root)


def test_pidfd() -> None:
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    fd = syscalls.pidfd_open(pid)
    try:
        syscalls.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.WTERMSIG(status) == signal.SIGKILL


def test_capability_names() -> None:
    assert C.BY_NAME["CAP_SYS_ADMIN"] == 21
    assert C.NAMES[C.CAP_LAST_CAP] == "CAP_CHECKPOINT_RESTORE"
