"""Task and process exit (kernel/exit.c).

A task leaves in stages: it stops running application code and gives up its
platform context; it releases what it shares (address space, descriptor
table, filesystem context) when it is the last user; and if it is the last
task of its process, the process becomes a zombie, its children are handed to
a reaper, and its parent is told.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import task_stop
from pkg.sentry.kernel.cputime import account_exit
from pkg.sentry.kernel.futex import exit_futexes
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import notify_parent_cldstop, send_to_thread_group
from pkg.sentry.kernel.waiter import EVENT_IN

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

log = logging.getLogger(__name__)


def wait_status_exited(code: int) -> int:
    """Encodes a normal exit for wait(2)."""
    return (code & 0xFF) << 8


def wait_status_signaled(signo: int, core: bool = False) -> int:
    """Encodes death by a signal for wait(2)."""
    return signo | (0x80 if core else 0)


def exit_task(t: Task) -> None:
    """Runs every exit stage of t on its own thread."""
    kernel = t.kernel
    tg = t.tg
    sh = tg.signal_handlers

    if t.context is not None:
        try:
            t.context.release()
        except OSError as e:
            log.warning("exit: tid=%d releasing platform context: %s", t.tid, e)
        t.context = None

    # Robust and PI futexes the thread holds (futex_exit_release).
    exit_futexes(t)

    # CLONE_CHILD_CLEARTID: zero the word and wake one futex waiter, as
    # mm_release does. Failure to write is ignored.
    if t.clear_child_tid:
        try:
            t.mm.write_i32(t.clear_child_tid, 0)
            kernel.futex_wake(t, t.clear_child_tid, 1)
        except SyscallError:
            pass

    tg.timers.on_task_exit(t)
    with kernel.tasks.mu, sh.mu:
        stop_completed = task_stop.exit_locked(t)
        # Signals left pending die with the task (and their charges).
        t.pending.discard(S.FULL_MASK)
        account_exit(t)
        tg.tasks.remove(t)
        last = not tg.tasks
        if tg.leader is not t:
            # The leader's id is the process id, kept until the zombie is
            # reaped.
            kernel.tasks.release_id(t.tid)
        del kernel.tasks.tasks[t.tid]
        if last:
            tg.pending.discard(S.FULL_MASK)
            tg.zombie = True
            status = tg.exit_status if tg.exiting else tg.leader.exit_status
            tg.exit_status = status

    if stop_completed:
        notify_parent_cldstop(tg, S.CLD_STOPPED)
    _release_shared(t)

    if last:
        tg.timers.on_exit()
        _exit_notify(t, tg)
    t.close()
    if not kernel.tasks.tasks:
        kernel.tasks.empty.set()


def _release_shared(t: Task) -> None:
    mm = t.mm
    mm.users -= 1
    if mm.users == 0:
        mm.release()
    fdt = t.fd_table
    fdt.users -= 1
    if fdt.users == 0:
        fdt.close_all()
    t.fs.dec_users()


def _exit_notify(t: Task, tg: ThreadGroup) -> None:
    kernel = t.kernel
    status = tg.exit_status
    log.debug("exit: tgid=%d exits with wait status %#x", tg.tgid, status)
    with kernel.tasks.mu:
        # Hand the children to a subreaper or to init.
        reaper = _find_reaper(tg)
        for child in tg.children:
            child.parent = reaper
            if reaper is not None:
                reaper.children.append(child)
        orphans = tg.children
        tg.children = []
        parent = tg.parent
    for child in orphans:
        if child.zombie and reaper is not None:
            reaper.wait_queue.notify(EVENT_IN)

    if tg is kernel.init_tg:
        kernel.on_init_exit(status)
        return
    if parent is None:
        kernel.on_orphan_exit(tg)
        return
    if status & 0x7F:
        code, st = (S.CLD_DUMPED if status & 0x80 else S.CLD_KILLED), status & 0x7F
    else:
        code, st = S.CLD_EXITED, status >> 8
    psh = parent.signal_handlers
    with psh.mu:
        action = psh.actions[S.SIGCHLD]
        autoreap = tg.exit_signal == S.SIGCHLD and (
            action.handler == S.SIG_IGN or action.flags & S.SA_NOCLDWAIT
        )
    if tg.exit_signal:
        send_to_thread_group(
            parent,
            SignalInfo(signo=tg.exit_signal, code=code, pid=tg.tgid, status=st),
        )
    if autoreap:
        kernel.reap(tg)
    parent.wait_queue.notify(EVENT_IN)


def _find_reaper(tg: ThreadGroup) -> ThreadGroup | None:
    """Returns who adopts tg's children: the nearest live subreaper
    ancestor, else init (find_new_reaper)."""
    kernel = tg.kernel
    p = tg.parent
    while p is not None:
        if p.child_subreaper and not p.zombie:
            return p
        p = p.parent
    init = kernel.init_tg
    if init is None or init is tg or init.zombie:
        return None
    return init
