"""Task and process exit (kernel/exit.c).

A task leaves in stages, on its own thread: it stops running application
code and gives up its platform context; it lets a vfork parent go and clears
its CLONE_CHILD_CLEARTID word; it leaves its process; the children it
created are handed to another live thread of the process or, failing that,
to the nearest child subreaper ancestor or the container's init, and each
one with PR_SET_PDEATHSIG set gets that signal; it releases what it shared
(address space, descriptor table, filesystem context) when it was the last
user. If it was the last task of its process, the process becomes a zombie:
process groups it orphaned are sent SIGHUP and SIGCONT if stopped, and the
parent gets the exit signal and is woken for wait(2), or reaps the zombie at
once if it ignores SIGCHLD.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import ptrace, task_stop
from pkg.sentry.kernel.cputime import account_exit, thread_group_cputime
from pkg.sentry.kernel.futex import exit_futexes
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.kernel.sessions import (
    kill_orphaned_pgrp_locked,
    leave_process_group_locked,
)
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_acct import ns_to_ticks, sample_max_rss_locked
from pkg.sentry.kernel.task_clone import release_vfork_parent
from pkg.sentry.kernel.task_signals import (
    notify_parent_cldstop,
    send_to_thread_group,
)
from pkg.sentry.kernel.waiter import EVENT_HUP, EVENT_IN

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


def wait_status_stopped(signo: int) -> int:
    """Encodes a stop by signo for wait(2) (WIFSTOPPED)."""
    return (signo << 8) | 0x7F


# The wait status of a continued process (WIFCONTINUED).
WAIT_STATUS_CONTINUED = 0xFFFF


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

    # mm_release: robust and PI futexes the thread holds
    # (futex_exit_release), the vfork parent, CLONE_CHILD_CLEARTID.
    exit_futexes(t)
    release_vfork_parent(t)
    clear_child_tid(t)

    tg.timers.on_task_exit(t)
    with kernel.tasks.mu:
        if len(tg.tasks) == 1:
            # The last thread: the address space is still there to measure.
            sample_max_rss_locked(tg)
    with kernel.tasks.mu, sh.mu:
        stop_completed = task_stop.exit_locked(t)
        # Signals left pending die with the task (and their charges).
        t.pending.discard(S.FULL_MASK)
        account_exit(t)
        kernel.stats.exited_switches += t.cpu.nvcsw + t.cpu.nivcsw
        nv, niv = tg.exited_switches
        tg.exited_switches = (nv + t.cpu.nvcsw, niv + t.cpu.nivcsw)
        tg.exited_ioac.add(t.ioac)
        tg.tasks.remove(t)
        last = not tg.tasks
        if tg.leader is not t:
            # The leader's id is the process id, kept until the zombie is
            # reaped.
            kernel.tasks.release_id(t.tid)
        del kernel.tasks.tasks[t.tid]
        if tg.exec_task is not None:
            # execve waits for its siblings to be gone.
            tg.exec_task.wake()
        if last:
            tg.pending.discard(S.FULL_MASK)
            if not tg.exiting:
                # Threads that all called exit(2): the process reports the
                # last one's code, as Linux 6.x does.
                tg.exit_status = t.exit_status

    if stop_completed:
        notify_parent_cldstop(tg, S.CLD_STOPPED)
    if t.ptrace is not None or tg.leader_tracer is not None:
        ptrace.tracee_exits(t)
    if t.tracees or t.ptrace_exits:
        ptrace.detach_tracees(t)
    _forget_original_parent(t)
    _release_shared(t)

    if last:
        tg.timers.on_exit()
        # exit_sem: before the parent can see the exit.
        ipc_of(t).sem.exit_undo(t)
        _exit_notify(tg)
    else:
        # Thread pidfds become readable.
        tg.exit_queue.notify(EVENT_IN)
    if t.ipc_ns is not None:
        t.ipc_ns.dec_users()
    t.close()
    if not kernel.tasks.tasks:
        kernel.tasks.empty.set()


def clear_child_tid(t: Task) -> None:
    """Zeroes t's CLONE_CHILD_CLEARTID word and wakes one futex waiter on it,
    as mm_release does when others still use the address space (a thread
    library's join). Write failures are ignored."""
    addr = t.clear_child_tid
    if not addr:
        return
    t.clear_child_tid = 0
    if t.mm.users <= 1:
        return
    try:
        t.mm.write_i32(addr, 0)
        t.kernel.futex_wake(t, addr, 1)
    except SyscallError:
        pass


def _release_shared(t: Task) -> None:
    with t.kernel.tasks.mu:
        mm = t.mm
        mm.users -= 1
        release_mm = mm.users == 0
        fdt = t.fd_table
        fdt.users -= 1
        close_fds = fdt.users == 0
    if release_mm:
        mm.release()
    if close_fds:
        fdt.close_all()
    t.fs.dec_users()


def _alive_thread(tg: ThreadGroup) -> Task | None:
    """Returns a thread of tg that is not exiting (find_alive_thread)."""
    for x in tg.tasks:
        if not x.exiting:
            return x
    return None


def _find_reaper_locked(tg: ThreadGroup) -> ThreadGroup | None:
    """Returns who adopts the children of tg's dead threads: the nearest
    ancestor that is a child subreaper with a live thread, else the
    container's init (find_new_reaper)."""
    kernel = tg.kernel
    p = tg.parent
    while p is not None and p is not kernel.init_tg:
        if p.child_subreaper and _alive_thread(p) is not None:
            return p
        p = p.parent
    init = kernel.init_tg
    if init is None or init is tg or init.zombie:
        return None
    return init


def _forget_original_parent(t: Task) -> None:
    """Hands the children created by t to their new parent thread and sends
    their parent-death signals (forget_original_parent)."""
    tg = t.tg
    ts = t.kernel.tasks
    with ts.mu:
        mine = [c for c in tg.children if c.real_parent is t]
        if not mine:
            return
        reaper_task = _alive_thread(tg)
        reaper = tg if reaper_task is not None else _find_reaper_locked(tg)
        if reaper is not None and reaper_task is None:
            reaper_task = _alive_thread(reaper)
        for child in mine:
            child.real_parent = reaper_task
            with child.signal_handlers.mu:
                signals = [x.pdeath_signal for x in child.tasks if x.pdeath_signal]
            for signo in signals:
                send_to_thread_group(
                    child,
                    SignalInfo(
                        signo=signo, code=S.SI_USER, pid=tg.tgid, uid=t.creds.ruid
                    ),
                )
            if reaper is not tg:
                _reparent_locked(tg, child, reaper)


def _reparent_locked(
    father: ThreadGroup, child: ThreadGroup, reaper: ThreadGroup | None
) -> None:
    """Moves child from father to another process (reparent_leader)."""
    father.children.remove(child)
    child.parent = reaper
    # The new parent expects SIGCHLD whatever the old one asked for.
    child.exit_signal = S.SIGCHLD
    if reaper is None:
        return
    reaper.children.append(child)
    if child.zombie and not child.reaped:
        _notify_parent_locked(child)
    kill_orphaned_pgrp_locked(child, father)


def _exit_notify(tg: ThreadGroup) -> None:
    """Makes tg a zombie and tells its parent (exit_notify)."""
    kernel = tg.kernel
    status = tg.exit_status
    log.debug("exit: tgid=%d exits with wait status %#x", tg.tgid, status)
    with kernel.tasks.mu:
        kill_orphaned_pgrp_locked(tg, None)
        tg.zombie = True
        # Children left by threads that exited before the last one was
        # reparented already; a group exit can leave some behind.
        leftovers = list(tg.children)
        if leftovers:
            reaper = _find_reaper_locked(tg)
            reaper_task = _alive_thread(reaper) if reaper is not None else None
            for child in leftovers:
                child.real_parent = reaper_task
                _reparent_locked(tg, child, reaper)
        if tg is not kernel.init_tg:
            _notify_parent_locked(tg)
        orphan = tg.parent is None and tg is not kernel.init_tg
    tg.exit_queue.notify(EVENT_IN)
    if tg is kernel.init_tg:
        kernel.on_init_exit(status)
    elif orphan:
        # A process runsc exec started: its parent is outside the sandbox.
        kernel.on_orphan_exit(tg)


def _notify_parent_locked(tg: ThreadGroup) -> None:
    """Sends the zombie tg's exit signal to its parent and wakes the
    parent's waiters; reaps tg at once if the parent ignores SIGCHLD
    (do_notify_parent).

    Preconditions: the TaskSet's mu is held; tg is a zombie.
    """
    parent = tg.parent
    if parent is None:
        return
    status = tg.exit_status
    if status & 0x7F:
        code = S.CLD_DUMPED if status & 0x80 else S.CLD_KILLED
        st = status & 0x7F
    else:
        code, st = S.CLD_EXITED, status >> 8
    signo = tg.exit_signal
    if signo and tg.parent_exec_id != parent.exec_id:
        # The parent has exec'd since: it may not know this signal.
        signo = S.SIGCHLD
    psh = parent.signal_handlers
    autoreap = False
    with psh.mu:
        action = psh.actions[S.SIGCHLD]
        if signo == S.SIGCHLD and (
            action.handler == S.SIG_IGN or action.flags & S.SA_NOCLDWAIT
        ):
            autoreap = True
            if action.handler == S.SIG_IGN:
                signo = 0
    if 0 < signo <= S.SIGRTMAX:
        utime, stime = thread_group_cputime(tg)
        leader = tg.leader
        uid = leader.creds.ruid if leader is not None else 0
        send_to_thread_group(
            parent,
            SignalInfo(
                signo=signo,
                code=code,
                pid=tg.tgid,
                uid=uid,
                status=st,
                utime=ns_to_ticks(utime),
                stime=ns_to_ticks(stime),
            ),
        )
    if autoreap:
        reap_locked(tg)
    parent.wait_queue.notify(EVENT_IN)


def reap_locked(tg: ThreadGroup) -> None:
    """Forgets a zombie process: its id, its place in the process tree and
    in its process group (release_task).

    Preconditions: the TaskSet's mu is held.
    """
    if tg.reaped:
        return
    tg.reaped = True
    ts = tg.kernel.tasks
    ts.thread_groups.pop(tg.tgid, None)
    ts.release_id(tg.tgid)
    parent = tg.parent
    if parent is not None and tg in parent.children:
        parent.children.remove(tg)
    leave_process_group_locked(ts, tg)
    tg.exit_queue.notify(EVENT_IN | EVENT_HUP)
