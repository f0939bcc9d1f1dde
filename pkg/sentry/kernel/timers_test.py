"""Tests of the timer thread and of POSIX timer overrun accounting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pkg.abi.linux import signal as S
from pkg.abi.linux import time as T
from pkg.sentry.kernel.kernel_testutil import FakeKernel, wait_until
from pkg.sentry.kernel.timers import PosixTimer, TimerQueue, monotonic_ns


@pytest.fixture
def kernel() -> Iterator[FakeKernel]:
    k = FakeKernel()
    yield k
    k.close()


def test_queue_runs_in_deadline_order() -> None:
    q = TimerQueue()
    done = threading.Event()
    order: list[int] = []
    now = monotonic_ns()
    q.schedule(now + 30_000_000, lambda: (order.append(3), done.set()))
    q.schedule(now + 10_000_000, lambda: order.append(1))
    h = q.schedule(now + 20_000_000, lambda: order.append(2))
    q.cancel(h)
    assert done.wait(5)
    assert order == [1, 3]
    assert q.pending() == 0
    q.close()


def test_queue_reports_failing_callbacks() -> None:
    errors: list[str] = []
    failed = threading.Event()

    def on_error(reason: str) -> None:
        errors.append(reason)
        failed.set()

    q = TimerQueue(on_error)
    q.schedule(monotonic_ns(), lambda: 1 / 0)
    assert failed.wait(5)
    assert errors
    q.close()


def test_queue_keeps_running_past_a_far_deadline() -> None:
    q = TimerQueue()
    ran = threading.Event()
    now = monotonic_ns()
    # Centuries ahead: beyond what one Condition.wait takes.
    q.schedule(now + 10**30, lambda: None)
    time.sleep(0.05)
    q.schedule(now + 10_000_000, ran.set)
    assert ran.wait(5)
    q.close()


def _timer(kernel: FakeKernel, notify: int = T.SIGEV_SIGNAL) -> PosixTimer:
    tg = kernel.new_process()
    return tg.timers.add_posix(
        lambda i: PosixTimer(
            tg.timers, i, T.CLOCK_MONOTONIC, None, notify, S.SIGUSR1, 77, None
        )
    )


def test_periodic_timer_counts_overruns_at_delivery(kernel: FakeKernel) -> None:
    timer = _timer(kernel)
    tg = timer.owner.tg
    tg.tasks[0].signal_mask = S.sigmask(S.SIGUSR1)
    timer.set(1_000_000, 1_000_000, False)
    assert wait_until(lambda: tg.pending.mask & S.sigmask(S.SIGUSR1))
    # Not rescheduled while its signal is queued.
    time.sleep(0.05)
    with tg.signal_handlers.mu:
        info = tg.pending.dequeue_signal(S.SIGUSR1)
    assert info is not None
    assert info.code == S.SI_TIMER
    assert info.value == 77
    assert info.overrun >= 20
    assert timer.overrun_last == info.overrun
    # Rearmed at delivery: the next one comes.
    assert wait_until(lambda: tg.pending.mask & S.sigmask(S.SIGUSR1))
    timer.delete()
    assert not tg.pending.mask & S.sigmask(S.SIGUSR1)


def test_one_shot_timer_disarms(kernel: FakeKernel) -> None:
    timer = _timer(kernel)
    tg = timer.owner.tg
    tg.tasks[0].signal_mask = S.sigmask(S.SIGUSR1)
    timer.set(1_000_000, 0, False)
    assert wait_until(lambda: tg.pending.mask & S.sigmask(S.SIGUSR1))
    assert timer.get() == (0, 0)


def test_sigev_none_reports_time(kernel: FakeKernel) -> None:
    timer = _timer(kernel, T.SIGEV_NONE)
    timer.set(10_000_000_000, 1_000_000_000, False)
    remaining, interval = timer.get()
    assert 9_000_000_000 < remaining <= 10_000_000_000
    assert interval == 1_000_000_000
    assert kernel.timer_queue.pending() == 0


def test_ignored_periodic_timer_keeps_going(kernel: FakeKernel) -> None:
    timer = _timer(kernel)
    tg = timer.owner.tg
    tg.signal_handlers.actions[S.SIGUSR1].handler = S.SIG_IGN
    timer.set(1_000_000, 1_000_000, False)
    time.sleep(0.02)
    assert timer.get()[0] > 0
    assert not tg.pending.mask
    timer.delete()


def test_itimer_real(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    tg.tasks[0].signal_mask = S.sigmask(S.SIGALRM)
    old = tg.timers.real.set(1_000_000, 0)
    assert old == (0, 0)
    assert wait_until(lambda: tg.pending.mask & S.sigmask(S.SIGALRM))
    assert tg.timers.real.get() == (0, 0)
