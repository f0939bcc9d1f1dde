"""Tests of EventFD: counter semantics, blocking and waking with real
threads, and interruption."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import eventfd as E
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.eventfd.eventfd import new_eventfd
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import SignalHandlers
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT, Entry


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v)


@pytest.fixture
def task() -> Iterator[Task]:
    tg = ThreadGroup(None, 1, SignalHandlers(), LimitSet(), None)  # type: ignore[arg-type]
    t = Task(None, 1, tg, None, None, None, None, None, "test")  # type: ignore[arg-type]
    tg.tasks.append(t)
    yield t
    t.close()


def _until(cond: Callable[[], bool]) -> None:
    """Waits for another thread to reach a state (bounded)."""
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_counter_and_semaphore(task: Task) -> None:
    f = new_eventfd(2, E.EFD_NONBLOCK)
    assert f.write(task, _u64(3)) == 8
    assert f.read(task, 8) == _u64(5)
    with pytest.raises(SyscallError) as e:
        f.read(task, 8)
    assert e.value.errno == errno.EAGAIN

    s = new_eventfd(2, E.EFD_NONBLOCK | E.EFD_SEMAPHORE)
    assert s.read(task, 8) == _u64(1)
    assert s.read(task, 8) == _u64(1)
    with pytest.raises(SyscallError):
        s.read(task, 8)


def test_sizes_and_limits(task: Task) -> None:
    f = new_eventfd(0, E.EFD_NONBLOCK)
    for bad in (b"\0" * 7, b"\0" * 9, _u64(0xFFFF_FFFF_FFFF_FFFF)):
        with pytest.raises(SyscallError) as e:
            f.write(task, bad)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(SyscallError) as e:
        f.read(task, 7)
    assert e.value.errno == errno.EINVAL
    f.write(task, _u64(E.EVENTFD_MAX))
    with pytest.raises(SyscallError) as e:
        f.write(task, _u64(1))
    assert e.value.errno == errno.EAGAIN
    assert f.readiness(EVENT_IN | EVENT_OUT) == EVENT_IN


def test_notifies_readers_and_writers(task: Task) -> None:
    f = new_eventfd(0, E.EFD_NONBLOCK)
    seen: list[int] = []
    f.event_register(Entry(seen.append))
    f.write(task, _u64(1))
    f.read(task, 8)
    assert seen == [EVENT_IN, EVENT_OUT]


def test_blocking_read_is_woken_by_a_write(task: Task) -> None:
    f = new_eventfd(0, 0)
    writer = Task(None, 2, task.tg, None, None, None, None, None, "writer")  # type: ignore[arg-type]
    result: list[bytes] = []
    th = threading.Thread(target=lambda: result.append(f.read(task, 8)))
    th.start()
    _until(lambda: bool(f.queue))
    f.write(writer, _u64(7))
    th.join(10)
    assert result == [_u64(7)]
    assert not f.queue
    writer.close()


def test_blocking_write_is_woken_by_a_read(task: Task) -> None:
    f = new_eventfd(0, 0)
    f.write(task, _u64(E.EVENTFD_MAX))
    reader = Task(None, 2, task.tg, None, None, None, None, None, "reader")  # type: ignore[arg-type]
    done = threading.Event()

    def write() -> None:
        f.write(task, _u64(4))
        done.set()

    th = threading.Thread(target=write)
    th.start()
    _until(lambda: bool(f.queue))
    assert not done.is_set()
    assert f.read(reader, 8) == _u64(E.EVENTFD_MAX)
    th.join(10)
    assert done.is_set()
    assert f.read(reader, 8) == _u64(4)
    reader.close()


def test_blocked_read_is_interruptible(task: Task) -> None:
    f = new_eventfd(0, 0)
    errors: list[int] = []

    def read() -> None:
        try:
            f.read(task, 8)
        except SyscallError as e:
            errors.append(e.errno)

    th = threading.Thread(target=read)
    th.start()
    _until(lambda: bool(f.queue))
    task.interrupt()
    th.join(10)
    assert errors == [errno.ERESTARTSYS]
    assert not f.queue
