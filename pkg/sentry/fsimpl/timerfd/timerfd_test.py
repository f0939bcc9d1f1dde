"""Tests of TimerFD on a real TimerQueue: one-shot and periodic counts,
rescheduling only when read, disarming, and cancelling on release."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.timerfd.timerfd import new_timerfd
from pkg.sentry.kernel.timers import TimerQueue
from pkg.sentry.kernel.waiter import EVENT_IN, Entry

_MS = 1_000_000


@pytest.fixture
def timers() -> Iterator[TimerQueue]:
    q = TimerQueue()
    yield q
    q.close()


def _expired(f: object) -> threading.Event:
    fired = threading.Event()
    f.event_register(Entry(lambda _m: fired.set(), EVENT_IN))  # type: ignore[attr-defined]
    return fired


def test_one_shot(timers: TimerQueue) -> None:
    f = new_timerfd(timers, T.CLOCK_MONOTONIC, 0)
    fired = _expired(f)
    f.set(5 * _MS, 0, False, 0)
    assert fired.wait(10)
    assert f.readiness(EVENT_IN) == EVENT_IN
    assert f.read(None, 8) == struct.pack("<Q", 1)  # type: ignore[arg-type]
    assert f.readiness(EVENT_IN) == 0
    assert f.get() == (0, 0)
    assert timers.pending() == 0


def test_periodic_counts_missed_periods_when_read(timers: TimerQueue) -> None:
    f = new_timerfd(timers, T.CLOCK_MONOTONIC, 0)
    fired = _expired(f)
    f.set(time.monotonic_ns() - 1000 * _MS, 100 * _MS, True, 0)
    assert fired.wait(10)
    # Not rescheduled until read.
    assert timers.pending() == 0
    (count,) = struct.unpack("<Q", f.read(None, 8))  # type: ignore[arg-type]
    assert 10 <= count <= 12
    assert timers.pending() == 1
    remaining, interval = f.get()
    assert 0 < remaining <= 100 * _MS
    assert interval == 100 * _MS


def test_disarm_and_release(timers: TimerQueue) -> None:
    f = new_timerfd(timers, T.CLOCK_MONOTONIC, 0)
    f.set(3600 * 1000 * _MS, 0, False, 0)
    assert timers.pending() == 1
    old = f.set(0, 0, False, 0)
    assert old[0] > 0
    assert timers.pending() == 0
    f.set(3600 * 1000 * _MS, 0, False, 0)
    f.dec_ref()
    assert timers.pending() == 0


def test_read_errors(timers: TimerQueue) -> None:
    f = new_timerfd(timers, T.CLOCK_MONOTONIC, 0o4000)
    for length, err in ((7, errno.EINVAL), (8, errno.EAGAIN)):
        with pytest.raises(SyscallError) as e:
            f.read(None, length)  # type: ignore[arg-type]
        assert e.value.errno == err
