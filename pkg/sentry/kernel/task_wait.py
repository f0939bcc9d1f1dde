"""Waiting for children: wait4(2) and waitid(2) (kernel/exit.c do_wait).

A wait looks at the children of the calling process (of the calling thread
alone with __WNOTHREAD) that match the id asked for and the clone-ness asked
for, and reports the first that has something to report: an exit (WEXITED),
a stop not yet reported (WSTOPPED), a continue not yet reported
(WCONTINUED). Reporting an exit reaps the zombie and reporting a stop or a
continue consumes it, unless WNOWAIT. With nothing to report it sleeps,
interruptibly, until a child changes state; with no matching child at all it
fails with ECHILD.

Stops and continues are recorded on the child's ThreadGroup by signal
delivery (wait_stopped_signo, wait_continued) under its signal lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import wait as W
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.task_acct import (
    Usage,
    exited_usage,
    thread_group_usage_locked,
)
from pkg.sentry.kernel.task_exit import (
    WAIT_STATUS_CONTINUED,
    reap_locked,
    wait_status_stopped,
)
from pkg.sentry.kernel.waiter import EVENT_IN, Entry

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup


@dataclass(slots=True)
class WaitOptions:
    """WaitOptions is what a wait asks for."""

    # P_ALL, P_PID or P_PGID (a pidfd is resolved to `target`).
    idtype: int
    id: int
    # W* flags.
    options: int
    # For waitid(P_PIDFD): the process the pidfd refers to.
    target: ThreadGroup | None = None


@dataclass(slots=True)
class WaitResult:
    """WaitResult is what a wait reports about one child."""

    pid: int
    uid: int
    # CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_STOPPED or CLD_CONTINUED.
    code: int
    # si_status: the exit code or the signal number.
    status: int
    # The wait(2) status word.
    wait_status: int
    # The child's resource usage, with that of its reaped children.
    usage: Usage


def _eligible(t: Task, child: ThreadGroup, opts: WaitOptions) -> bool:
    """Reports whether child matches the wait (eligible_pid and
    eligible_child)."""
    if opts.options & W.WNOTHREAD and child.real_parent is not t:
        return False
    if opts.target is not None:
        if child is not opts.target:
            return False
    elif opts.idtype == W.P_PID:
        if child.tgid != opts.id:
            return False
    elif opts.idtype == W.P_PGID and child.pgid != opts.id:
        return False
    if opts.options & W.WALL:
        return True
    # A "clone" child reports with a signal other than SIGCHLD; __WCLONE
    # waits for those only, and the default for the others only.
    is_clone = child.exit_signal != S.SIGCHLD
    return is_clone == bool(opts.options & W.WCLONE)


def _uid(child: ThreadGroup) -> int:
    leader = child.leader
    return leader.creds.ruid if leader is not None else 0


def _consider_locked(
    t: Task, child: ThreadGroup, opts: WaitOptions
) -> WaitResult | None:
    """Returns what child has to report, consuming it unless WNOWAIT
    (wait_consider_task).

    Preconditions: the TaskSet's mu is held; child is not a zombie unless
    WEXITED is asked for.
    """
    options = opts.options
    keep = bool(options & W.WNOWAIT)
    if child.zombie:
        status = child.exit_status
        if status & 0x7F:
            code = S.CLD_DUMPED if status & 0x80 else S.CLD_KILLED
            st = status & 0x7F
        else:
            code, st = S.CLD_EXITED, status >> 8
        usage = exited_usage(child)
        result = WaitResult(child.tgid, _uid(child), code, st, status, usage)
        if not keep:
            t.tg.child_usage.add(usage)
            reap_locked(child)
        return result
    want_stop = options & W.WSTOPPED
    want_cont = options & W.WCONTINUED
    if not want_stop and not want_cont:
        return None
    with child.signal_handlers.mu:
        if want_stop and child.wait_stopped_signo:
            signo = child.wait_stopped_signo
            if not keep:
                child.wait_stopped_signo = 0
            code, st, ws = S.CLD_STOPPED, signo, wait_status_stopped(signo)
        elif want_cont and child.wait_continued:
            if not keep:
                child.wait_continued = False
            code, st, ws = S.CLD_CONTINUED, S.SIGCONT, WAIT_STATUS_CONTINUED
        else:
            return None
    usage = thread_group_usage_locked(child)
    usage.add(child.child_usage)
    return WaitResult(child.tgid, _uid(child), code, st, ws, usage)


def _scan(t: Task, opts: WaitOptions) -> tuple[WaitResult | None, bool]:
    """Returns (a report, whether any child matched at all)."""
    with t.kernel.tasks.mu:
        matched = False
        for child in list(t.tg.children):
            if not _eligible(t, child, opts):
                continue
            if child.zombie and not opts.options & W.WEXITED:
                # A zombie has no stop or continue left to report, and does
                # not count as a child to wait for.
                continue
            matched = True
            result = _consider_locked(t, child, opts)
            if result is not None:
                return result, True
        tracers = [t] if opts.options & W.WNOTHREAD else list(t.tg.tasks)
        for tracer in tracers:
            if not tracer.tracees and not tracer.ptrace_exits:
                continue
            found, result = _scan_tracees_locked(tracer, opts)
            if result is not None:
                return result, True
            matched = matched or found
        return None, matched


def _tracee_eligible(tid: int, pgid: int, opts: WaitOptions) -> bool:
    """eligible_pid for a tracee; ptrace makes any tracee eligible whatever
    its clone-ness (eligible_child)."""
    if opts.target is not None:
        return opts.target.tgid == tid
    if opts.idtype == W.P_PID:
        return tid == opts.id
    if opts.idtype == W.P_PGID:
        return pgid == opts.id
    return True


def _scan_tracees_locked(
    tracer: Task, opts: WaitOptions
) -> tuple[bool, WaitResult | None]:
    """Looks for a ptrace-stop or an exit of tracer's tracees to report
    (wait_task_stopped with ptrace set: no WUNTRACED needed).

    Preconditions: the TaskSet's mu is held.

    Returns:
        (whether any tracee matched, the report or None).
    """
    keep = bool(opts.options & W.WNOWAIT)
    matched = False
    if opts.options & W.WEXITED:
        for i, ex in enumerate(tracer.ptrace_exits):
            if not _tracee_eligible(ex.tid, 0, opts):
                continue
            if not keep:
                del tracer.ptrace_exits[i]
            status = ex.status
            if status & 0x7F:
                code, st = S.CLD_KILLED, status & 0x7F
            else:
                code, st = S.CLD_EXITED, status >> 8
            return True, WaitResult(ex.tid, ex.uid, code, st, status, ex.usage)
    for tracee in tracer.tracees:
        if not _tracee_eligible(tracee.tid, tracee.tg.pgid, opts):
            continue
        matched = True
        ps = tracee.ptrace
        if ps is None:
            continue
        with tracee.tg.signal_handlers.mu:
            stop = ps.stop
            if stop is None or stop.reported:
                continue
            if not keep:
                stop.reported = True
            status = stop.status
        return True, WaitResult(
            tracee.tid,
            tracee.creds.ruid,
            S.CLD_TRAPPED,
            (status >> 8) & 0xFF,
            status,
            Usage(),
        )
    return matched, None


def do_wait(t: Task, opts: WaitOptions) -> WaitResult | None:
    """Waits for a child of t as wait4 and waitid do.

    Returns:
        The report, or None if WNOHANG was given and no matching child has
        anything to report.

    Raises:
        SyscallError: ECHILD if no child matches; ERESTARTSYS if a signal
            interrupted the wait.
    """
    interrupted = False
    entry = Entry(lambda _mask: t.wake(), EVENT_IN)
    queue = t.tg.wait_queue
    queue.register(entry)
    try:
        while True:
            # A wakeup and a signal may come together: look again before
            # giving up, as do_wait does, so a child's exit is not lost to
            # the SIGCHLD it sent.
            result, matched = _scan(t, opts)
            if result is not None:
                return result
            if not matched:
                raise SyscallError(errno.ECHILD)
            if opts.options & W.WNOHANG:
                return None
            if interrupted:
                raise SyscallError(errno.ERESTARTSYS)
            try:
                t.block()
            except SyscallError as e:
                if e.errno != errno.ERESTARTSYS:
                    raise
                interrupted = True
    finally:
        queue.unregister(entry)
