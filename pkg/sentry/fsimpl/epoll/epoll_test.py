"""Tests of EpollInstance: reporting modes, registrations that end with
their file, nesting limits, and host files watched through the instance's
host epoll."""

from __future__ import annotations

import os
import select
import struct
import threading
from collections.abc import Iterator

import pytest

from pkg.abi.linux import epoll as EP
from pkg.abi.linux import errno
from pkg.abi.linux import eventfd as E
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.epoll.epoll import EpollInstance, new_epoll
from pkg.sentry.fsimpl.eventfd.eventfd import EventFD, new_eventfd
from pkg.sentry.fsimpl.host.host_file import HostFile
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import SignalHandlers
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.waiter import EVENT_IN, Entry


@pytest.fixture
def task() -> Iterator[Task]:
    tg = ThreadGroup(None, 1, SignalHandlers(), LimitSet(), None)  # type: ignore[arg-type]
    t = Task(None, 1, tg, None, None, None, None, None, "test")  # type: ignore[arg-type]
    tg.tasks.append(t)
    yield t
    t.close()


def _collect(ep: EpollInstance, maxevents: int = 16) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []

    def deliver(found: list[tuple[int, int]]) -> int:
        out.extend(found)
        return len(found)

    ep.collect(maxevents, deliver)
    return out


def _signal(task: Task, f: EventFD, n: int = 1) -> None:
    f.write(task, struct.pack("<Q", n))


def _drain(task: Task, f: EventFD) -> None:
    f.read(task, 8)


def test_level_edge_and_oneshot(task: Task) -> None:
    ep = new_epoll()
    lt, et, one = (new_eventfd(0, E.EFD_NONBLOCK) for _ in range(3))
    ep.add(lt, 3, EP.EPOLLIN, 1)
    ep.add(et, 4, EP.EPOLLIN | EP.EPOLLET, 2)
    ep.add(one, 5, EP.EPOLLIN | EP.EPOLLONESHOT, 3)
    assert _collect(ep) == []
    for f in (lt, et, one):
        _signal(task, f)
    assert sorted(_collect(ep)) == [(EP.EPOLLIN, 1), (EP.EPOLLIN, 2), (EP.EPOLLIN, 3)]
    # Level-triggered again; the edge and the one-shot not.
    assert _collect(ep) == [(EP.EPOLLIN, 1)]
    _signal(task, et)
    _signal(task, one)
    assert sorted(_collect(ep)) == [(EP.EPOLLIN, 1), (EP.EPOLLIN, 2)]
    ep.modify(one, 5, EP.EPOLLIN | EP.EPOLLONESHOT, 4)
    assert sorted(_collect(ep)) == [(EP.EPOLLIN, 1), (EP.EPOLLIN, 4)]


def test_failed_delivery_keeps_events(task: Task) -> None:
    ep = new_epoll()
    f = new_eventfd(1, E.EFD_NONBLOCK)
    ep.add(f, 3, EP.EPOLLIN | EP.EPOLLONESHOT, 9)

    def fault(found: list[tuple[int, int]]) -> int:
        raise SyscallError(errno.EFAULT)

    with pytest.raises(SyscallError):
        ep.collect(1, fault)
    assert _collect(ep) == [(EP.EPOLLIN, 9)]
    assert _collect(ep) == []


def test_registration_ends_with_the_last_reference(task: Task) -> None:
    ep = new_epoll()
    f = new_eventfd(1, E.EFD_NONBLOCK)
    f.inc_ref()  # A second descriptor.
    ep.add(f, 3, EP.EPOLLIN, 1)
    f.dec_ref()
    assert _collect(ep) == [(EP.EPOLLIN, 1)]
    f.dec_ref()
    assert _collect(ep) == []
    assert not f.queue
    with pytest.raises(SyscallError) as e:
        ep.delete(f, 3)
    assert e.value.errno == errno.ENOENT


def test_release_unregisters_everything(task: Task) -> None:
    ep = new_epoll()
    f = new_eventfd(1, E.EFD_NONBLOCK)
    ep.add(f, 3, EP.EPOLLIN, 1)
    assert f.queue
    ep.dec_ref()
    assert not f.queue
    f.dec_ref()


def test_nested_instances_and_loops(task: Task) -> None:
    outer, inner = new_epoll(), new_epoll()
    f = new_eventfd(0, E.EFD_NONBLOCK)
    inner.add(f, 3, EP.EPOLLIN, 1)
    outer.add(inner, 4, EP.EPOLLIN, 2)
    assert outer.readiness(EVENT_IN) == 0
    woken: list[int] = []
    outer.event_register(Entry(woken.append))
    _signal(task, f)
    assert woken == [EVENT_IN]
    assert _collect(outer) == [(EP.EPOLLIN, 2)]
    with pytest.raises(SyscallError) as e:
        inner.add(outer, 5, EP.EPOLLIN, 0)
    assert e.value.errno == errno.ELOOP


def test_chain_length_is_limited(task: Task) -> None:
    eps = [new_epoll() for _ in range(6)]
    for i in range(4):
        eps[i + 1].add(eps[i], i, EP.EPOLLIN, 0)
    with pytest.raises(SyscallError) as e:
        eps[5].add(eps[4], 4, EP.EPOLLIN, 0)
    assert e.value.errno == errno.ELOOP


@pytest.fixture
def pipe() -> Iterator[tuple[HostFile, int]]:
    r, w = os.pipe()
    f = HostFile(r)
    yield f, w
    f.dec_ref()
    os.close(w)


def test_host_file_edges(task: Task, pipe: tuple[HostFile, int]) -> None:
    f, w = pipe
    assert f.epollable()
    ep = new_epoll()
    ep.add(f, 0, EP.EPOLLIN | EP.EPOLLET, 7)
    assert _collect(ep) == []
    assert ep.host_wait_fds()
    os.write(w, b"a")
    assert _collect(ep) == [(EP.EPOLLIN, 7)]
    # Still readable, but no new edge.
    assert _collect(ep) == []
    os.write(w, b"b")
    assert _collect(ep) == [(EP.EPOLLIN, 7)]


def test_host_file_wakes_a_blocked_waiter(
    task: Task, pipe: tuple[HostFile, int]
) -> None:
    f, w = pipe
    outer, inner = new_epoll(), new_epoll()
    inner.add(f, 0, EP.EPOLLIN, 1)
    outer.add(inner, 5, EP.EPOLLIN, 2)
    blocked = threading.Event()
    events: list[list[tuple[int, int]]] = []

    def wait() -> None:
        while True:
            found = _collect(outer)
            if found:
                events.append(found)
                return
            blocked.set()
            task.block(None, outer.host_wait_fds())

    th = threading.Thread(target=wait)
    th.start()
    assert blocked.wait(10)
    os.write(w, b"x")
    th.join(10)
    assert events == [[(EP.EPOLLIN, 2)]]


def test_unpollable_host_file() -> None:
    f = HostFile(os.open("/dev/null", os.O_RDONLY))
    assert not f.epollable()
    # poll(2) still sees it as ready, as Linux's DEFAULT_POLLMASK.
    assert f.readiness(select.POLLIN) == select.POLLIN
    f.dec_ref()
