"""Group stop and continue: job control (kernel/signal.c).

A stop signal whose action is the default does nothing when it is sent. The
thread that dequeues it starts a group stop (do_signal_stop): every other
live thread of the process gets `stop_pending` and is interrupted, and each
thread, in its run loop, takes part by setting `stopped` and waiting. The
last thread to stop completes the group stop: the process is `stopped`, the
stop becomes reportable to wait (wait_stopped_signo) and the parent gets
SIGCHLD with CLD_STOPPED unless its SIGCHLD action has SA_NOCLDSTOP.

SIGCONT acts when it is sent, whatever its action or mask (prepare_signal):
it discards pending stop signals, cancels a stop in progress, wakes the
stopped threads, makes the continue reportable (wait_continued) and tells the
parent with CLD_CONTINUED. A stop signal sent discards a pending SIGCONT.

A stopped thread waits interruptibly, but only SIGCONT (which clears
`stopped`) or a group exit (SIGKILL) ends the wait; other signals stay
pending until it continues.

Every field here is guarded by the signal lock (SignalHandlers.mu). Parent
notification takes the parent's signal lock, so it is done by the callers
after they release the child's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

log = logging.getLogger(__name__)


def initiate_stop_locked(t: Task, signo: int) -> bool:
    """Starts a group stop of t's process for signo, which t dequeued, and
    makes t take part (do_signal_stop).

    Preconditions: the signal lock is held.

    Returns:
        True if t completed the stop and must notify its parent
        (task_signals.notify_parent_cldstop) after releasing the lock.
    """
    tg = t.tg
    if tg.exiting or t.exiting:
        return False
    if not tg.stopped:
        tg.stop_signo = signo
    tg.group_stop_count = 0
    for task in tg.tasks:
        if task.exiting:
            continue
        if task is t or not task.stopped:
            task.stop_pending = True
            tg.group_stop_count += 1
            if task is not t:
                task.interrupt()
    return participate_locked(t)


def participate_locked(t: Task) -> bool:
    """Makes t enter the group stop it has pending.

    Preconditions: the signal lock is held; t.stop_pending.

    Returns:
        True if t is the last thread to stop (see initiate_stop_locked).
    """
    tg = t.tg
    t.stop_pending = False
    t.stopped = True
    if tg.group_stop_count:
        tg.group_stop_count -= 1
        if not tg.group_stop_count and not tg.stopped:
            tg.stopped = True
            tg.wait_stopped_signo = tg.stop_signo
            tg.wait_continued = False
            return True
    return False


def exit_locked(t: Task) -> bool:
    """Withdraws an exiting task from a group stop it had pending
    (exit_signals).

    Preconditions: the signal lock is held.

    Returns:
        True if its leaving completes the stop (notify the parent).
    """
    t.stopped = False
    if not t.stop_pending:
        return False
    t.stop_pending = False
    tg = t.tg
    if tg.group_stop_count:
        tg.group_stop_count -= 1
        if not tg.group_stop_count and not tg.stopped and not tg.exiting:
            tg.stopped = True
            tg.wait_stopped_signo = tg.stop_signo
            tg.wait_continued = False
            return True
    return False


def continue_locked(tg: ThreadGroup) -> int:
    """Applies the side effects of sending SIGCONT to tg.

    Preconditions: the signal lock is held.

    Returns:
        CLD_CONTINUED if tg was stopped, CLD_STOPPED if a stop was in
        progress (reported as completed, the continue folded into it, as
        Linux does), else 0. A non-zero result is for
        task_signals.notify_parent_cldstop.
    """
    tg.pending.discard(S.STOP_MASK)
    for task in tg.tasks:
        task.pending.discard(S.STOP_MASK)
        task.stop_pending = False
        if task.stopped:
            task.stopped = False
            task.wake()
    why = 0
    if tg.stopped:
        why = S.CLD_CONTINUED
    elif tg.group_stop_count:
        why = S.CLD_STOPPED
    if why:
        tg.stopped = False
        tg.wait_continued = True
        tg.group_stop_count = 0
        tg.stop_signo = 0
        tg.wait_stopped_signo = 0
    return why


def wait_while_stopped(t: Task) -> None:
    """Blocks t while it is in a group stop (TASK_STOPPED).

    Only SIGCONT and a group exit end the wait; other wake-ups are absorbed.
    Called on t's own thread without the signal lock.
    """
    sh = t.tg.signal_handlers
    while True:
        with sh.mu:
            if not t.stopped:
                return
            if t.exiting or t.tg.exiting:
                t.stopped = False
                return
            if t.ptrace is not None:
                # A tracer attached: the stop is reported to it
                # (ptrace.group_stop) instead.
                return
            # Signals that arrive now stay pending; the run loop looks at
            # them again once the task continues.
            t.interrupted = False
        try:
            t.block()
        except SyscallError as e:
            if e.errno != errno.ERESTARTSYS:
                raise
