"""Tests of group stop and continue, driving real Tasks' interrupt handling
on threads (the syscall tests need fork to do the same in the sandbox)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pkg.abi.linux import signal as S
from pkg.sentry.kernel import task_stop
from pkg.sentry.kernel.kernel_testutil import FakeKernel, Runner, wait_until
from pkg.sentry.kernel.signals import SigAction, SignalInfo
from pkg.sentry.kernel.task_signals import handle_interrupt, send_to_thread_group
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.waiter import Entry


@pytest.fixture
def kernel() -> Iterator[FakeKernel]:
    k = FakeKernel()
    yield k
    k.close()


def _catch_sigchld(parent: ThreadGroup, flags: int = 0) -> None:
    parent.signal_handlers.actions[S.SIGCHLD] = SigAction(0x1000, flags)


def _take(tg: ThreadGroup, signo: int) -> SignalInfo | None:
    with tg.signal_handlers.mu:
        return tg.pending.dequeue_signal(signo)


def _kill(tg: ThreadGroup, signo: int) -> None:
    send_to_thread_group(tg, SignalInfo(signo=signo, pid=1))


def _run_loops(tg: ThreadGroup) -> list[Runner]:
    """Runs handle_interrupt of every thread, as their run loops would."""
    return [Runner(lambda t=t: handle_interrupt(t, 0)) for t in list(tg.tasks)]


def test_stop_continue_kill(kernel: FakeKernel) -> None:
    parent = kernel.new_process()
    _catch_sigchld(parent)
    child = kernel.new_process(threads=3, parent=parent)
    events = []
    parent.wait_queue.register(Entry(events.append))

    _kill(child, S.SIGSTOP)
    runners = _run_loops(child)
    assert wait_until(lambda: child.stopped)
    assert child.wait_stopped_signo == S.SIGSTOP
    assert all(t.stopped for t in child.tasks)
    assert all(r.alive() for r in runners)
    info = _take(parent, S.SIGCHLD)
    assert info is not None
    assert info.code == S.CLD_STOPPED
    assert info.status == S.SIGSTOP
    assert info.pid == child.tgid
    assert events

    # A fatal signal waits while the process is stopped.
    _kill(child, S.SIGTERM)
    assert not child.exiting
    assert all(r.alive() for r in runners)

    _kill(child, S.SIGCONT)
    assert not child.stopped
    assert child.wait_continued
    assert child.wait_stopped_signo == 0
    info = _take(parent, S.SIGCHLD)
    assert info is not None
    assert info.code == S.CLD_CONTINUED
    assert info.status == S.SIGCONT

    # Continued, the threads take the pending SIGTERM and exit.
    assert [r.join() for r in runners] == [False, False, False]
    assert child.exiting
    assert child.exit_status == S.SIGTERM


def test_sigkill_ends_a_stop(kernel: FakeKernel) -> None:
    parent = kernel.new_process()
    child = kernel.new_process(threads=2, parent=parent)
    _kill(child, S.SIGSTOP)
    runners = _run_loops(child)
    assert wait_until(lambda: child.stopped)
    _kill(child, S.SIGKILL)
    assert [r.join() for r in runners] == [False, False]
    assert child.exit_status == S.SIGKILL


def test_nocldstop_wakes_wait_without_signal(kernel: FakeKernel) -> None:
    parent = kernel.new_process()
    _catch_sigchld(parent, S.SA_NOCLDSTOP)
    child = kernel.new_process(parent=parent)
    events = []
    parent.wait_queue.register(Entry(events.append))
    _kill(child, S.SIGSTOP)
    runners = _run_loops(child)
    assert wait_until(lambda: child.stopped)
    assert events
    assert _take(parent, S.SIGCHLD) is None
    _kill(child, S.SIGKILL)
    assert [r.join() for r in runners] == [False]


def test_ignored_sigchld_is_not_queued(kernel: FakeKernel) -> None:
    parent = kernel.new_process()
    child = kernel.new_process(parent=parent)
    _kill(child, S.SIGSTOP)
    runners = _run_loops(child)
    assert wait_until(lambda: child.stopped)
    # SIGCHLD's default action ignores it: nothing pends.
    assert _take(parent, S.SIGCHLD) is None
    _kill(child, S.SIGKILL)
    for r in runners:
        r.join()


def test_cont_discards_pending_stop_and_vice_versa(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    t = tg.tasks[0]
    t.signal_mask = S.sigmask(S.SIGTSTP) | S.sigmask(S.SIGCONT)
    _kill(tg, S.SIGTSTP)
    assert tg.pending.mask & S.sigmask(S.SIGTSTP)
    _kill(tg, S.SIGCONT)
    assert not tg.pending.mask & S.sigmask(S.SIGTSTP)
    assert tg.pending.mask & S.sigmask(S.SIGCONT)
    _kill(tg, S.SIGSTOP)
    assert not tg.pending.mask & S.sigmask(S.SIGCONT)


def test_continue_during_stop_in_progress(kernel: FakeKernel) -> None:
    parent = kernel.new_process()
    _catch_sigchld(parent)
    child = kernel.new_process(threads=2, parent=parent)
    _kill(child, S.SIGSTOP)
    # Only the first thread takes part; the second never runs its loop.
    first = Runner(lambda: handle_interrupt(child.tasks[0], 0))
    assert wait_until(lambda: child.tasks[0].stopped)
    assert not child.stopped
    assert child.tasks[1].stop_pending
    _kill(child, S.SIGCONT)
    # Reported as a completed stop, with the continue folded into it.
    info = _take(parent, S.SIGCHLD)
    assert info is not None
    assert info.code == S.CLD_STOPPED
    assert child.wait_continued
    assert not child.tasks[1].stop_pending
    assert first.join() is True


def test_exit_of_last_pending_thread_completes_stop(kernel: FakeKernel) -> None:
    child = kernel.new_process(threads=2)
    _kill(child, S.SIGSTOP)
    first = Runner(lambda: handle_interrupt(child.tasks[0], 0))
    assert wait_until(lambda: child.tasks[0].stopped)
    second = child.tasks[1]
    with child.signal_handlers.mu:
        assert task_stop.exit_locked(second)
    assert child.stopped
    _kill(child, S.SIGKILL)
    assert first.join() is False


def test_orphaned_process_group_discards_tty_stops(kernel: FakeKernel) -> None:
    # A process without a parent is in an orphaned process group.
    tg = kernel.new_process()
    _kill(tg, S.SIGTSTP)
    assert handle_interrupt(tg.tasks[0], 0) is True
    assert not tg.stopped
    assert not tg.tasks[0].stopped


def test_stop_signal_with_handler_does_not_stop(kernel: FakeKernel) -> None:
    tg = kernel.new_process()
    tg.signal_handlers.actions[S.SIGTSTP] = SigAction(S.SIG_IGN)
    _kill(tg, S.SIGTSTP)
    assert handle_interrupt(tg.tasks[0], 0) is True
    assert not tg.stopped
