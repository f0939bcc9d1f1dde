"""Tests of the advisory lock engine."""

from __future__ import annotations

import contextlib
import threading

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.lock import LOCK_EOF, FileLocks


class FakeTask:
    """A task that blocks on an Event; interrupt() makes block raise."""

    def __init__(self) -> None:
        self._ev = threading.Event()
        self.interrupted = False
        self.blocked = threading.Event()

    def wake(self) -> None:
        self._ev.set()

    def interrupt(self) -> None:
        self.interrupted = True
        self._ev.set()

    def block(self) -> None:
        self.blocked.set()
        self._ev.wait(10)
        self._ev.clear()
        if self.interrupted:
            raise SyscallError(errno.ERESTARTSYS)


def _errno(fn: object, *args: object) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)  # type: ignore[operator]
    return e.value.errno


def test_conflicts_only_between_owners() -> None:
    locks = FileLocks()
    a, b = object(), object()
    locks.lock(None, a, 1, F.F_WRLCK, 0, 10, block=False)
    locks.lock(None, a, 1, F.F_WRLCK, 5, 20, block=False)
    assert locks.test(a, F.F_WRLCK, 0, LOCK_EOF) is None
    held = locks.test(b, F.F_RDLCK, 3, 4)
    assert held is not None and (held.start, held.end, held.pid) == (0, 20, 1)
    assert _errno(locks.lock, None, b, 2, F.F_RDLCK, 19, 30, False) == errno.EAGAIN
    locks.lock(None, b, 2, F.F_RDLCK, 20, 30, block=False)


def test_split_and_merge() -> None:
    locks = FileLocks()
    a = object()
    locks.lock(None, a, 1, F.F_WRLCK, 0, 100, block=False)
    locks.unlock(a, 40, 60)
    assert [(r.start, r.end) for r in locks.holders()] == [(0, 40), (60, 100)]
    locks.lock(None, a, 1, F.F_RDLCK, 30, 70, block=False)
    got = [(r.type, r.start, r.end) for r in locks.holders()]
    assert got == [(F.F_WRLCK, 0, 30), (F.F_RDLCK, 30, 70), (F.F_WRLCK, 70, 100)]
    locks.lock(None, a, 1, F.F_WRLCK, 30, 70, block=False)
    assert [(r.start, r.end) for r in locks.holders()] == [(0, 100)]


def test_readers_share_writers_exclude() -> None:
    locks = FileLocks()
    a, b, c = object(), object(), object()
    locks.lock(None, a, 1, F.F_RDLCK, 0, 10, block=False)
    locks.lock(None, b, 2, F.F_RDLCK, 0, 10, block=False)
    assert _errno(locks.lock, None, c, 3, F.F_WRLCK, 5, 6, False) == errno.EAGAIN


def test_blocking_lock_waits_for_unlock() -> None:
    locks = FileLocks()
    a, b = object(), object()
    locks.lock(None, a, 1, F.F_WRLCK, 0, 10, block=False)
    t = FakeTask()
    done = threading.Event()

    def waiter() -> None:
        locks.lock(t, b, 2, F.F_WRLCK, 0, 10, block=True)  # type: ignore[arg-type]
        done.set()

    th = threading.Thread(target=waiter)
    th.start()
    assert t.blocked.wait(5)
    assert not done.is_set()
    locks.unlock(a)
    th.join(5)
    assert done.is_set()
    assert locks.test(a, F.F_RDLCK, 0, 1) is not None


def test_blocking_lock_is_interruptible() -> None:
    locks = FileLocks()
    a, b = object(), object()
    locks.lock(None, a, 1, F.F_WRLCK, 0, 10, block=False)
    t = FakeTask()
    result: list[int] = []

    def waiter() -> None:
        try:
            locks.lock(t, b, 2, F.F_WRLCK, 0, 10, block=True)  # type: ignore[arg-type]
        except SyscallError as e:
            result.append(e.errno)

    th = threading.Thread(target=waiter)
    th.start()
    assert t.blocked.wait(5)
    t.interrupt()
    th.join(5)
    assert result == [errno.ERESTARTSYS]


def test_deadlock_is_detected() -> None:
    locks = FileLocks()
    a, b = object(), object()
    locks.lock(None, a, 1, F.F_WRLCK, 0, 10, block=False)
    locks.lock(None, b, 2, F.F_WRLCK, 10, 20, block=False)
    t = FakeTask()

    def a_waits_for_b() -> None:
        with contextlib.suppress(SyscallError):
            locks.lock(t, a, 1, F.F_WRLCK, 10, 20, block=True)  # type: ignore[arg-type]

    th = threading.Thread(target=a_waits_for_b)
    th.start()
    assert t.blocked.wait(5)
    # b asking for a's range would wait on a, which waits on b.
    assert _errno(locks.lock, FakeTask(), b, 2, F.F_WRLCK, 0, 10, True) == errno.EDEADLK
    t.interrupt()
    th.join(5)


def test_flock() -> None:
    locks = FileLocks()
    a, b = object(), object()
    locks.lock_bsd(None, a, F.F_RDLCK, block=False)
    locks.lock_bsd(None, b, F.F_RDLCK, block=False)
    assert _errno(locks.lock_bsd, None, b, F.F_WRLCK, False) == errno.EWOULDBLOCK
    locks.unlock_bsd(a)
    locks.lock_bsd(None, b, F.F_WRLCK, block=False)
    assert _errno(locks.lock_bsd, None, a, F.F_RDLCK, False) == errno.EWOULDBLOCK
    locks.release_description(b)
    locks.lock_bsd(None, a, F.F_WRLCK, block=False)
