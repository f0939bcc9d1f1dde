"""Tests of HostRelay with a real host pty and a line discipline."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.devpts import host_relay
from pkg.sentry.fsimpl.devpts.host_relay import HostRelay
from pkg.sentry.fsimpl.devpts.line_discipline import LineDiscipline

TIMEOUT = 30.0


class FakeTerminal:
    """The part of devpts's Terminal the relay uses."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.ld = LineDiscipline(self.signals.append)


class FakeMaster:
    """A sentry master file: records its release."""

    def __init__(self) -> None:
        self.term = FakeTerminal()
        self.released = threading.Event()

    def dec_ref(self) -> None:
        self.released.set()


def _wait(cond: object) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _replica_read(ld: LineDiscipline) -> bytes:
    """What the container would read (canonical: a line)."""
    out = b""

    def ready() -> bool:
        nonlocal out
        try:
            out = ld.replica_read(None, 4096, True)  # type: ignore[arg-type]
        except SyscallError as e:
            assert e.errno == errno.EAGAIN
            return False
        return True

    _wait(ready)
    return out


def _host_read(fd: int, want: bytes) -> bytes:
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while want not in out:
        assert time.monotonic() < deadline, out
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            out += os.read(fd, 4096)
    return out


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, replica = os.openpty()
    yield master, replica
    for fd in (master, replica):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_bytes_both_ways_with_one_line_discipline(pty: tuple[int, int]) -> None:
    host_master, host_replica = pty
    fake = FakeMaster()
    relay = HostRelay(fake, os.dup(host_replica), os.dup(host_replica), "t")  # type: ignore[arg-type]
    relay.start()
    # The host side is raw: no echo or line editing there.
    attrs = termios.tcgetattr(host_replica)
    assert not attrs[3] & (termios.ECHO | termios.ICANON | termios.ISIG)

    os.write(host_master, b"hello\n")
    ld = fake.term.ld
    assert _replica_read(ld) == b"hello\n"
    # The sentry's line discipline echoed it, with ONLCR.
    assert _host_read(host_master, b"hello\r\n") == b"hello\r\n"

    ld.replica_write(None, b"out\n", True)  # type: ignore[arg-type]
    assert _host_read(host_master, b"out\r\n") == b"out\r\n"

    # ^C becomes a signal in the sandbox, not on the host.
    os.write(host_master, b"\x03")
    _wait(lambda: S.SIGINT in fake.term.signals)

    # The last replica closes: the relay ends and gives the host its
    # attributes back.
    ld.hang_up(master=False)
    assert relay.done.wait(TIMEOUT)
    assert fake.released.is_set()
    assert termios.tcgetattr(host_replica)[3] & termios.ICANON


def test_size_follows_the_host(pty: tuple[int, int]) -> None:
    host_master, host_replica = pty
    fcntl.ioctl(host_master, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
    fake = FakeMaster()
    relay = HostRelay(fake, os.dup(host_replica), os.dup(host_replica), "t")  # type: ignore[arg-type]
    ld = fake.term.ld
    assert (ld.winsize.rows, ld.winsize.cols) == (20, 70)
    relay.start()
    fcntl.ioctl(host_master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    # Seen by polling, without any signal from the host.
    _wait(lambda: (ld.winsize.rows, ld.winsize.cols) == (40, 120))
    assert S.SIGWINCH in fake.term.signals
    ld.hang_up(master=False)
    assert relay.done.wait(TIMEOUT)


def test_host_hang_up_closes_the_master(pty: tuple[int, int]) -> None:
    host_master, host_replica = pty
    fake = FakeMaster()
    relay = HostRelay(fake, os.dup(host_replica), os.dup(host_replica), "t")  # type: ignore[arg-type]
    relay.start()
    os.close(host_master)
    assert fake.released.wait(TIMEOUT)
    assert relay.done.wait(TIMEOUT)


def test_output_is_drained_before_the_end(pty: tuple[int, int]) -> None:
    host_master, host_replica = pty
    fake = FakeMaster()
    ld = fake.term.ld
    ld.replica_write(None, b"x" * 5000 + b"end\n", True)  # type: ignore[arg-type]
    ld.hang_up(master=False)
    relay = HostRelay(fake, os.dup(host_replica), os.dup(host_replica), "t")  # type: ignore[arg-type]
    relay.start()
    out = _host_read(host_master, b"end\r\n")
    assert out == b"x" * 5000 + b"end\r\n"
    assert relay.done.wait(TIMEOUT)


def test_input_end_of_a_pipe_ends_input_only() -> None:
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    fake = FakeMaster()
    relay = HostRelay(fake, r, out_w, "t")  # type: ignore[arg-type]
    relay.start()
    os.write(w, b"a\n")
    os.close(w)
    ld = fake.term.ld
    assert _replica_read(ld) == b"a\n"
    assert not fake.released.is_set()
    ld.replica_write(None, b"b\n", True)  # type: ignore[arg-type]
    assert _host_read(out_r, b"b\r\n").endswith(b"b\r\n")
    ld.hang_up(master=False)
    assert relay.done.wait(TIMEOUT)
    os.close(out_r)


def test_make_raw_on_a_pipe_is_none() -> None:
    r, w = os.pipe()
    assert host_relay.make_raw(r) is None
    os.close(r)
    os.close(w)
