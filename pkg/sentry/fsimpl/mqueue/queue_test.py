"""Tests of a POSIX message queue's ordering, limits and notification."""

from types import SimpleNamespace

import pytest

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.mqueue.queue import MessageQueue, Notification
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT

# Only the parts of a Task that a queue that never blocks touches.
TASK = SimpleNamespace(pid=7, creds=SimpleNamespace(ruid=0))


def test_priority_then_arrival_order() -> None:
    q = MessageQueue(8, 16)
    for data, prio in ((b"a", 1), (b"b", 5), (b"c", 1), (b"d", 5), (b"e", 0)):
        q.send(TASK, data, prio, True, None)  # type: ignore[arg-type]
    got = [q.receive(TASK, True, None) for _ in range(5)]  # type: ignore[arg-type]
    assert got == [(b"b", 5), (b"d", 5), (b"a", 1), (b"c", 1), (b"e", 0)]


def test_full_and_empty_without_blocking() -> None:
    q = MessageQueue(1, 4)
    assert q.readiness(EVENT_IN | EVENT_OUT) == EVENT_OUT
    q.send(TASK, b"xy", 0, True, None)  # type: ignore[arg-type]
    assert q.readiness(EVENT_IN | EVENT_OUT) == EVENT_IN
    assert b"QSIZE:2 " in q.info()
    with pytest.raises(SyscallError) as e:
        q.send(TASK, b"z", 0, True, None)  # type: ignore[arg-type]
    assert e.value.errno == errno.EAGAIN
    q.receive(TASK, True, None)  # type: ignore[arg-type]
    with pytest.raises(SyscallError) as e:
        q.receive(TASK, True, None)  # type: ignore[arg-type]
    assert e.value.errno == errno.EAGAIN


def test_notification_fires_once_on_empty_queue() -> None:
    q = MessageQueue(4, 4)
    fired: list[tuple[int, int]] = []
    n = Notification(
        owner_pid=3,
        owner="tg",
        owner_files="files",
        notify=0,
        signo=10,
        deliver=lambda pid, uid: fired.append((pid, uid)),
    )
    q.set_notification(n, "tg")
    assert q.info().endswith(b"NOTIFY:0     SIGNO:10    NOTIFY_PID:3     \n")
    with pytest.raises(SyscallError) as e:
        q.set_notification(n, "tg")
    assert e.value.errno == errno.EBUSY
    q.send(TASK, b"1", 0, True, None)  # type: ignore[arg-type]
    q.send(TASK, b"2", 0, True, None)  # type: ignore[arg-type]
    assert fired == [(7, 0)]
    assert q.notification is None


def test_close_by_owner_removes_notification() -> None:
    q = MessageQueue(4, 4)
    removed = []
    n = Notification(
        owner_pid=3,
        owner="tg",
        owner_files="files",
        notify=2,
        signo=0,
        deliver=None,
        removed=lambda quiet=False: removed.append(quiet),
    )
    q.set_notification(n, "tg")
    q.drop_notification_of("other files")
    assert q.notification is n
    q.drop_notification_of("files")
    assert q.notification is None
    assert removed == [False]
