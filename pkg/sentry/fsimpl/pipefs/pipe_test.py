"""Tests of the pipe buffer."""

from __future__ import annotations

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipe import Pipe, round_pipe_size


def _pipe() -> Pipe:
    p = Pipe(named=False)
    p.open_end(None, F.O_RDONLY)
    p.open_end(None, F.O_WRONLY)
    return p


def test_round_pipe_size() -> None:
    assert round_pipe_size(1) == 4096
    assert round_pipe_size(4097) == 8192
    assert round_pipe_size(65536) == 65536
    assert round_pipe_size((1 << 31) + 1) == 0


def test_fifo_order_and_partial_reads() -> None:
    p = _pipe()
    assert p.write(None, b"hello", True) == 5
    assert p.write(None, b" world", True) == 6
    assert p.read(None, 3, True) == b"hel"
    assert p.queued() == 8
    assert p.read(None, 100, True) == b"lo world"
    with pytest.raises(SyscallError) as e:
        p.read(None, 1, True)
    assert e.value.errno == errno.EAGAIN


def test_pages_fill_and_atomic_writes() -> None:
    p = _pipe()
    big = bytes(100_000)
    assert p.write(None, big, True) == 65536
    assert p.read(None, 1, True) == b"\0"
    # The first page is partly read: still occupied.
    with pytest.raises(SyscallError):
        p.write(None, b"x", True)
    p.read(None, 4095, True)
    # One page free: a small write merges nowhere (the last page is full)
    # and takes it.
    assert p.write(None, b"x" * 10, True) == 10
    assert p.write(None, b"y" * 10, True) == 10  # merges into that page


def test_eof_and_epipe() -> None:
    p = _pipe()
    p.write(None, b"z", True)
    p.close_end(F.O_WRONLY)
    assert p.read(None, 10, True) == b"z"
    assert p.read(None, 10, True) == b""
    q = _pipe()
    q.close_end(F.O_RDONLY)
    with pytest.raises(SyscallError) as e:
        q.write(None, b"x", True)
    assert e.value.errno == errno.EPIPE


def test_peek_consume() -> None:
    p = _pipe()
    p.write(None, b"abcdef", True)
    assert p.peek(None, 4, True) == b"abcd"
    p.consume(2)
    assert p.read(None, 10, True) == b"cdef"


def test_fifo_nonblocking_write_open_without_reader() -> None:
    p = Pipe(named=True)
    with pytest.raises(SyscallError) as e:
        p.open_end(None, F.O_WRONLY | F.O_NONBLOCK)
    assert e.value.errno == errno.ENXIO
    assert p.open_end(None, F.O_RDONLY | F.O_NONBLOCK) == p.w_counter
