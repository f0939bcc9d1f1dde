"""Tests of signal sending and of the clone and execve hooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno, sched
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as S
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.kernel_testutil import FakeKernel
from pkg.sentry.kernel.seccomp import SeccompFilter
from pkg.sentry.kernel.signals import SigAction, SignalInfo
from pkg.sentry.kernel.task_signals import (
    exec_signals,
    inherit_for_clone,
    join_group_stop_locked,
    send_to_task,
    send_to_thread_group,
)
from pkg.sentry.kernel.timers import PosixTimer


@pytest.fixture
def kernel() -> Iterator[FakeKernel]:
    k = FakeKernel()
    yield k
    k.close()


def test_ignored_signal_is_dropped_unless_blocked(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    t = tg.tasks[0]
    assert not send_to_thread_group(tg, SignalInfo(signo=S.SIGCHLD))
    assert not tg.pending.mask
    t.signal_mask = S.sigmask(S.SIGCHLD)
    assert send_to_thread_group(tg, SignalInfo(signo=S.SIGCHLD))
    assert tg.pending.mask == S.sigmask(S.SIGCHLD)


def test_waking_a_thread_that_does_not_block(kernel: FakeKernel) -> None:
    tg = kernel.new_process(threads=3)
    tg.signal_handlers.actions[S.SIGUSR1] = SigAction(0x1000)
    a, b, c = tg.tasks
    a.signal_mask = b.signal_mask = S.sigmask(S.SIGUSR1)
    send_to_thread_group(tg, SignalInfo(signo=S.SIGUSR1))
    assert (a.interrupted, b.interrupted, c.interrupted) == (False, False, True)


def test_fatal_signal_kills_every_thread_at_once(kernel: FakeKernel) -> None:
    tg = kernel.new_process(threads=2)
    send_to_thread_group(tg, SignalInfo(signo=S.SIGTERM))
    assert tg.exiting
    assert tg.exit_status == S.SIGTERM
    assert all(t.exiting and t.interrupted for t in tg.tasks)


def test_core_signal_waits_for_delivery(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    send_to_thread_group(tg, SignalInfo(signo=S.SIGQUIT))
    assert not tg.exiting
    assert tg.tasks[0].interrupted


def test_blocked_everywhere_stays_pending(kernel: FakeKernel) -> None:
    tg = kernel.new_process(threads=2)
    for t in tg.tasks:
        t.signal_mask = S.sigmask(S.SIGTERM)
    send_to_thread_group(tg, SignalInfo(signo=S.SIGTERM))
    assert not tg.exiting
    assert not any(t.interrupted for t in tg.tasks)


def test_thread_directed_signal(kernel: FakeKernel) -> None:
    tg = kernel.new_process(threads=2)
    tg.signal_handlers.actions[S.SIGUSR1] = SigAction(0x1000)
    a, b = tg.tasks
    send_to_task(b, SignalInfo(signo=S.SIGUSR1))
    assert b.pending.mask == S.sigmask(S.SIGUSR1)
    assert b.interrupted and not a.interrupted


def test_sigkill_cannot_be_stopped(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    tg.tasks[0].signal_mask = S.FULL_MASK
    send_to_thread_group(tg, SignalInfo(signo=S.SIGKILL))
    assert tg.exiting
    assert tg.exit_status == S.SIGKILL


def test_inherit_for_clone(kernel: FakeKernel) -> None:
    parent = kernel.new_process().tasks[0]
    parent.signal_mask = S.sigmask(S.SIGUSR1)
    parent.altstack = (0x10000, 0, 8192)
    parent.seccomp_mode = 2
    parent.seccomp_filter = SeccompFilter(((9, 0, 0, 0),), None)
    fork_child = kernel.new_process().tasks[0]
    inherit_for_clone(parent, fork_child, 0)
    assert fork_child.signal_mask == parent.signal_mask
    assert fork_child.altstack == parent.altstack
    assert fork_child.seccomp_filter is parent.seccomp_filter
    thread = kernel.new_process().tasks[0]
    inherit_for_clone(parent, thread, sched.CLONE_VM | sched.CLONE_THREAD)
    assert thread.altstack == (0, S.SS_DISABLE, 0)
    vfork_child = kernel.new_process().tasks[0]
    inherit_for_clone(parent, vfork_child, sched.CLONE_VM | sched.CLONE_VFORK)
    assert vfork_child.altstack == parent.altstack


def test_join_group_stop(kernel: FakeKernel) -> None:
    tg = kernel.new_process(threads=2)
    a, b = tg.tasks
    tg.group_stop_count = 1
    with tg.signal_handlers.mu:
        join_group_stop_locked(b)
    assert tg.group_stop_count == 2
    assert b.stop_pending
    assert not a.stop_pending


def test_exec_signals(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    t = tg.tasks[0]
    sh = tg.signal_handlers
    sh.actions[S.SIGUSR1] = SigAction(0x1000, S.SA_RESTART)
    sh.actions[S.SIGUSR2] = SigAction(S.SIG_IGN)
    t.signal_mask = S.sigmask(S.SIGINT)
    t.altstack = (0x10000, 0, 8192)
    timer = tg.timers.add_posix(
        lambda i: PosixTimer(
            tg.timers, i, T.CLOCK_MONOTONIC, None, T.SIGEV_NONE, 0, 0, None
        )
    )
    tg.timers.real.set(10_000_000_000, 0)
    exec_signals(t)
    assert sh.actions[S.SIGUSR1].handler == S.SIG_DFL
    assert sh.actions[S.SIGUSR2].handler == S.SIG_IGN
    assert t.signal_mask == S.sigmask(S.SIGINT)
    assert t.altstack == (0, S.SS_DISABLE, 0)
    assert tg.timers.get_posix(timer.id) is None
    assert tg.timers.real.get()[0] > 0


def test_sigpending_limit(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    t = tg.tasks[0]
    t.signal_mask = S.FULL_MASK & ~S.UNBLOCKABLE_MASK
    tg.limits.set(L.RLIMIT_SIGPENDING, 2, 2)
    rt = S.SIGRTMIN + 1
    for _ in range(2):
        assert send_to_thread_group(tg, SignalInfo(signo=rt, code=S.SI_QUEUE))
    with pytest.raises(SyscallError) as e:
        send_to_thread_group(tg, SignalInfo(signo=rt, code=S.SI_QUEUE))
    assert e.value.errno == errno.EAGAIN
    # kill(2)'s real-time signal goes, without its data.
    assert send_to_thread_group(tg, SignalInfo(signo=rt, code=S.SI_USER, pid=7))
    # Standard signals from the kernel or kill(2) pass the limit.
    assert send_to_thread_group(tg, SignalInfo(signo=S.SIGUSR1, pid=7))
    assert kernel.sigpending.count(0) == 3
    with tg.signal_handlers.mu:
        tg.pending.dequeue_signal(rt)
        tg.pending.discard(S.FULL_MASK)
    assert kernel.sigpending.count(0) == 0


def test_init_ignores_the_signals_it_does_not_handle(kernel: FakeKernel) -> None:
    init = kernel.new_process()
    kernel.init_tg = init
    inside = {"code": S.SI_USER, "pid": 7}
    for signo in (S.SIGTERM, S.SIGINT, S.SIGKILL, S.SIGSTOP):
        assert not send_to_thread_group(init, SignalInfo(signo=signo, **inside))
    assert not send_to_thread_group(init, SignalInfo(signo=S.SIGTERM))
    assert not init.exiting and not init.pending.mask
    # Blocked, it stays pending (a signalfd may read it).
    init.tasks[0].signal_mask = S.sigmask(S.SIGUSR1)
    assert send_to_thread_group(init, SignalInfo(signo=S.SIGUSR1, **inside))
    # Handled, it is delivered.
    init.signal_handlers.actions[S.SIGTERM] = SigAction(0x1000)
    assert send_to_thread_group(init, SignalInfo(signo=S.SIGTERM, **inside))
    # From outside the container (no sender pid) or the kernel, SIGKILL
    # still kills it.
    send_to_thread_group(init, SignalInfo(signo=S.SIGKILL))
    assert init.exiting
    other = kernel.new_process()
    send_to_thread_group(other, SignalInfo(signo=S.SIGTERM, **inside))
    assert other.exiting
