"""ptrace(2) between sandboxed tasks: the tracer link and ptrace-stops
(kernel/ptrace.c, the ptrace parts of kernel/signal.c and kernel/exit.c).

A tracee has a TraceeState naming its tracer, a thread. The tracee stops on
its own thread (ptrace_stop): it records a PtraceStop with the wait status
the tracer will see, tells the tracer (SIGCHLD with CLD_TRAPPED and a wake
of its process's wait queue), then sleeps until the tracer resumes it, it
is detached, or it is killed. While it sleeps its registers sit in its
platform State, where the tracer's thread reads and writes them; the FPU
state is pulled from the platform before stopping for the same reason.

The stops, where they happen:
- signal-delivery-stop: task_signals.handle_interrupt, for every signal but
  SIGKILL; the tracer's resume signal replaces it (0 suppresses it);
- group-stop: a tracee taking part in a group stop reports it and stays
  stopped until the tracer resumes it (PTRACE_LISTEN: until SIGCONT);
- PTRACE_EVENT_STOP: PTRACE_INTERRUPT and the first stop of a child
  auto-attached under PTRACE_SEIZE;
- syscall-enter and syscall-exit stops after PTRACE_SYSCALL (syscall_stops);
- events asked for by PTRACE_SETOPTIONS: fork, vfork, clone, exec, vfork
  done, exit.

wait(2) of any thread of the tracer's process sees the tracees' stops
(without WUNTRACED) and their exits (task_wait). A tracer that exits
detaches its tracees, or kills them with PTRACE_O_EXITKILL.

Attaching needs what Linux's ptrace_may_access asks (same real and saved
ids and a dumpable target, or CAP_SYS_PTRACE) and, as gVisor does by
default, what the Yama module asks at kernel.yama.ptrace_scope (yama_*
below): at 1, the default, only an ancestor of the target, a process it
named with PR_SET_PTRACER, or a holder of CAP_SYS_PTRACE may attach; 2
needs CAP_SYS_PTRACE; 3 forbids attaching. Unlike Linux, Yama is applied
to ptrace itself only, not to process_vm_* and /proc/pid/mem.

Lock order: Kernel.tasks.mu guards the links (Task.ptrace, Task.tracees,
Task.ptrace_exits); the tracee's signal lock guards its stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pkg.abi.linux import ptrace as PT
from pkg.abi.linux import signal as S
from pkg.abi.linux.errno import ENOSYS
from pkg.platform import platform as P
from pkg.sentry.kernel import task_signals
from pkg.sentry.kernel.credentials import CAP_SYS_PTRACE
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_acct import Usage
from pkg.sentry.kernel.waiter import EVENT_IN

if TYPE_CHECKING:
    from collections.abc import Callable

    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

log = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1

# How the tracer resumed the tracee: run freely, to the next system call
# boundary, or one instruction.
RESUME_CONT = 0
RESUME_SYSCALL = 1
RESUME_STEP = 2
# PTRACE_SYSEMU: stop at the next system call's entry and skip it, for a
# tracer that emulates system calls; with single-stepping too.
RESUME_SYSEMU = 3
RESUME_SYSEMU_STEP = 4


@dataclass(slots=True)
class PtraceStop:
    """PtraceStop is one ptrace-stop of a tracee."""

    # The wait(2) status the tracer gets.
    status: int
    # The tracer has collected it with wait (unless WNOWAIT).
    reported: bool = False
    # The tracer resumed the tracee (or it was detached or killed).
    done: bool = False
    # A group-stop (WSTOPSIG is the stop signal; LISTEN is allowed).
    group: bool = False


@dataclass(slots=True)
class TraceeState:
    """TraceeState is what a tracee knows of its tracer (Linux's
    task->ptrace, ->parent, ->last_siginfo, ->ptrace_message)."""

    tracer: Task
    seized: bool
    options: int = 0
    # The current stop, or None while running (tracee's signal lock).
    stop: PtraceStop | None = None
    # The signal of a signal-delivery-stop (GETSIGINFO/SETSIGINFO), or the
    # SIGTRAP of another stop.
    siginfo: SignalInfo | None = None
    # The signal the tracer resumed with (PTRACE_CONT's data).
    resume_signo: int = 0
    resume: int = RESUME_CONT
    # PTRACE_GETEVENTMSG.
    event_msg: int = 0
    # PTRACE_INTERRUPT (or a seized auto-attach) asked for an event stop.
    interrupt: bool = False
    # PTRACE_GET_SYSCALL_INFO: which kind of stop the tracee is in.
    syscall_op: int = PT.PTRACE_SYSCALL_INFO_NONE
    # PTRACE_LISTEN ended the group-stop's ptrace-stop.
    listening: bool = False


@dataclass(slots=True)
class PtraceExit:
    """PtraceExit is the exit of a tracee that its tracer has yet to wait
    for (the tracer is not its parent, or it is a thread)."""

    tid: int
    uid: int
    status: int
    usage: Usage = field(default_factory=Usage)


# Yama's ptrace_scope values.
YAMA_SCOPE_DISABLED = 0
YAMA_SCOPE_RELATIONAL = 1
YAMA_SCOPE_CAPABILITY = 2
YAMA_SCOPE_NO_ATTACH = 3


def _is_descendant_locked(ancestor: ThreadGroup, tg: ThreadGroup | None) -> bool:
    """Reports whether tg is ancestor or one of its descendants
    (task_is_descendant). Preconditions: Kernel.tasks.mu is held."""
    while tg is not None:
        if tg is ancestor:
            return True
        tg = tg.parent
    return False


def yama_may_attach_locked(tracer: Task, target: ThreadGroup) -> bool:
    """Reports whether Yama lets tracer attach to target
    (yama_ptrace_access_check). Preconditions: Kernel.tasks.mu is held."""
    scope = tracer.kernel.yama_ptrace_scope
    if scope == YAMA_SCOPE_DISABLED:
        return True
    if scope == YAMA_SCOPE_NO_ATTACH:
        return False
    privileged = tracer.creds.has_capability(CAP_SYS_PTRACE)
    if scope == YAMA_SCOPE_CAPABILITY or privileged:
        return privileged
    if _is_descendant_locked(tracer.tg, target) or target.ptracer_any:
        return True
    declared = target.ptracer_exception
    return (
        declared is not None
        and not declared.reaped
        and _is_descendant_locked(declared, tracer.tg)
    )


def yama_may_traceme(tracer: Task) -> bool:
    """Reports whether Yama lets a task be traced by its parent thread
    tracer through PTRACE_TRACEME (yama_ptrace_traceme)."""
    scope = tracer.kernel.yama_ptrace_scope
    if scope == YAMA_SCOPE_NO_ATTACH:
        return False
    if scope == YAMA_SCOPE_CAPABILITY:
        return tracer.creds.has_capability(CAP_SYS_PTRACE)
    return True


# Attaching and detaching.


def link_locked(tracer: Task, tracee: Task, seized: bool, options: int = 0) -> None:
    """Makes tracer the tracer of tracee (__ptrace_link).

    Preconditions: Kernel.tasks.mu is held; tracee is not traced.
    """
    tracee.ptrace = TraceeState(tracer, seized, options)
    tracer.tracees.append(tracee)


def detach_locked(tracee: Task, signo: int = 0) -> None:
    """Ends the tracing of tracee and lets it run (__ptrace_detach).

    A tracee detached in a signal-delivery-stop gets signo delivered.
    Preconditions: Kernel.tasks.mu is held and tracee is traced.
    """
    ps = tracee.ptrace
    assert ps is not None
    with contextlib.suppress(ValueError):
        ps.tracer.tracees.remove(tracee)
    with tracee.tg.signal_handlers.mu:
        tracee.ptrace = None
        stop = ps.stop
        ps.stop = None
        if stop is not None:
            ps.resume_signo = signo
            stop.done = True
        if tracee.stopped and not tracee.tg.stopped:
            # A group stop that the tracer resumed from is over.
            tracee.stopped = False
        tracee.interrupted = True
    tracee.wake()


def detach_tracees(tracer: Task) -> None:
    """Detaches every tracee of an exiting tracer; kills those traced with
    PTRACE_O_EXITKILL (exit_ptrace)."""
    ts = tracer.kernel.tasks
    kill = []
    with ts.mu:
        tracer.ptrace_exits.clear()
        for tracee in list(tracer.tracees):
            ps = tracee.ptrace
            if ps is not None and ps.options & PT.PTRACE_O_EXITKILL:
                kill.append(tracee.tg)
            detach_locked(tracee)
    for tg in kill:
        task_signals.send_to_thread_group(
            tg, SignalInfo(signo=S.SIGKILL, code=S.SI_KERNEL)
        )


def tracee_exits(t: Task) -> None:
    """Unlinks an exiting tracee and queues its exit for the tracer.

    A thread's exit is the thread's. The leader's is the process's, once
    its last thread is gone (delay_group_leader), and its parent's wait
    reports it anyway if the tracer is the parent.

    Called by task_exit on t's thread, after t has left its process.
    """
    ts = t.kernel.tasks
    with ts.mu:
        tg = t.tg
        last = not tg.tasks
        ps = t.ptrace
        if ps is None:
            if not last or tg.leader_tracer is None:
                return
            # The leader went first: report the process now.
            tracer = tg.leader_tracer
            tg.leader_tracer = None
            if ts.tasks.get(tracer.tid) is not tracer:
                return
            pid = tg.tgid
        else:
            tracer = ps.tracer
            detach_locked(t)
            if t is tg.leader and tg.parent is tracer.tg:
                return
            if t is tg.leader and not last:
                tg.leader_tracer = tracer
                return
            pid = t.tid
        status = tg.exit_status if tg.exiting or last else t.exit_status
        tracer.ptrace_exits.append(PtraceExit(pid, t.creds.ruid, status))
    if status & 0x7F:
        code, st = S.CLD_KILLED, status & 0x7F
    else:
        code, st = S.CLD_EXITED, status >> 8
    if last:
        task_signals.send_to_thread_group(
            tracer.tg,
            SignalInfo(
                signo=S.SIGCHLD, code=code, pid=pid, uid=t.creds.ruid, status=st
            ),
        )
    tracer.tg.wait_queue.notify(EVENT_IN)


# Stopping.


def _notify_tracer(t: Task, tracer: Task, status: int) -> None:
    """Sends SIGCHLD (CLD_TRAPPED) to the tracer's process unless it set
    SA_NOCLDSTOP or ignores SIGCHLD, and wakes its waits."""
    ttg = tracer.tg
    sh = ttg.signal_handlers
    with sh.mu:
        action = sh.actions[S.SIGCHLD]
        wanted = action.handler != S.SIG_IGN and not action.flags & S.SA_NOCLDSTOP
    if wanted:
        task_signals.send_to_thread_group(
            ttg,
            SignalInfo(
                signo=S.SIGCHLD,
                code=S.CLD_TRAPPED,
                pid=t.tid,
                uid=t.creds.ruid,
                status=(status >> 8) & 0xFF,
            ),
        )
    ttg.wait_queue.notify(EVENT_IN)


def ptrace_stop(
    t: Task,
    status: int,
    info: SignalInfo | None = None,
    group: bool = False,
    while_exiting: bool = False,
) -> TraceeState | None:
    """Puts t in a ptrace-stop that its tracer sees as wait status `status`
    and sleeps until the tracer resumes it (ptrace_stop).

    Called on t's own thread with no lock held.

    Args:
        t: the tracee.
        status: the wait status (WIFSTOPPED) to report.
        info: the siginfo PTRACE_GETSIGINFO returns; a SIGTRAP by default.
        group: the stop is a group-stop.
        while_exiting: stop even though t is exiting (PTRACE_EVENT_EXIT).

    Returns:
        The tracee state as the tracer left it, or None if t is not traced
        (any more) or was killed.
    """
    ts = t.kernel.tasks
    sh = t.tg.signal_handlers
    state = t.state
    if t.context is not None and not state.fpstate_valid:
        # The tracer reads and writes the FPU state while t sleeps.
        t.context.pull_fpstate(state)
    with ts.mu:
        ps = t.ptrace
        if ps is None:
            return None
        tracer = ps.tracer
        with sh.mu:
            if not while_exiting and (t.exiting or t.tg.exiting):
                return None
            stop = PtraceStop(status, group=group)
            ps.stop = stop
            ps.siginfo = info or SignalInfo(signo=S.SIGTRAP, code=S.SI_KERNEL)
            ps.resume_signo = 0
    log.debug("ptrace: tid=%d stops with status %#x", t.tid, status)
    _notify_tracer(t, tracer, status)

    if while_exiting:
        _block_until(t, lambda: stop.done)
    else:
        _block_until(t, lambda: stop.done or t.exiting or t.tg.exiting)
    with ts.mu, sh.mu:
        if t.ptrace is ps and ps.stop is stop:
            ps.stop = None
        task_signals.recalc_interrupted_locked(t)
        if not stop.done:
            return None
    # Resumed, or detached (detach_locked leaves the signal to deliver).
    return ps


def _block_until(t: Task, done: Callable[[], bool]) -> None:
    """Sleeps on t's wake descriptor until done() holds. Whoever makes it
    hold wakes t; signals leave t.interrupted set for later."""
    p = select.poll()
    p.register(t.wake_fd, select.POLLIN)
    while not done():
        p.poll()
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(t.wake_fd)


def _trap_info(t: Task, code: int) -> SignalInfo:
    """The siginfo of a syscall or event stop: si_code is the stop's
    SIGTRAP | event << 8 (or | 0x80), from t itself (ptrace_do_notify)."""
    return SignalInfo(signo=S.SIGTRAP, code=code, pid=t.tid, uid=t.creds.ruid)


def stop_status(signo: int, event: int = 0) -> int:
    """The wait status of a ptrace-stop: WSTOPSIG signo, event in bits
    16-23 (status >> 16 == PTRACE_EVENT_*)."""
    return (event << 16) | ((signo & 0xFF) << 8) | 0x7F


def signal_delivery_stop(t: Task, info: SignalInfo) -> SignalInfo | None:
    """Lets the tracer see a signal t is about to take (ptrace_signal).

    Returns:
        The signal to deliver instead (None: suppressed, or t killed).
    """
    ps = ptrace_stop(t, stop_status(info.signo), info)
    if ps is None:
        if t.ptrace is None and not t.exiting:
            # Detached before stopping: deliver as if untraced.
            return info
        return None
    signo = ps.resume_signo
    if not signo:
        return None
    got = ps.siginfo
    if got is not None and got.signo == signo:
        return got
    # A different signal: it looks sent by the tracer (ptrace_signal).
    tracer = ps.tracer
    return SignalInfo(
        signo=signo, code=S.SI_USER, pid=tracer.pid, uid=tracer.creds.ruid
    )


def group_stop(t: Task, signo: int) -> None:
    """Reports t's group-stop to its tracer and keeps t stopped until the
    tracer resumes it; PTRACE_LISTEN keeps it in the group stop until
    SIGCONT, then it traps again with PTRACE_EVENT_STOP."""
    ps = t.ptrace
    if ps is None:
        return
    event = PT.PTRACE_EVENT_STOP if ps.seized else 0
    ps2 = ptrace_stop(t, stop_status(signo, event), group=True)
    if ps2 is None:
        return
    with t.tg.signal_handlers.mu:
        listening = ps2.listening
        ps2.listening = False
        if not listening and t.ptrace is ps2:
            # The tracer resumed t: it runs despite the group stop.
            t.stopped = False
    if listening:
        _block_until(t, lambda: not t.stopped or t.exiting or t.ptrace is not ps2)
        if t.ptrace is ps2 and not t.exiting:
            event_stop(t, PT.PTRACE_EVENT_STOP, 0)


def event_stop(t: Task, event: int, msg: int, while_exiting: bool = False) -> None:
    """Reports a PTRACE_EVENT_* stop (ptrace_event).

    After PTRACE_LISTEN in a PTRACE_EVENT_STOP outside a group stop, t
    stays stopped until a signal arrives for it, then traps again.
    """
    ps = t.ptrace
    if ps is None:
        return
    ps.event_msg = msg
    while True:
        got = ptrace_stop(
            t,
            stop_status(S.SIGTRAP, event),
            _trap_info(t, S.SIGTRAP | event << 8),
            while_exiting=while_exiting,
        )
        if got is None or not got.listening:
            return
        got.listening = False
        if not _listen_for_signal(t, got):
            return


def _listen_for_signal(t: Task, ps: TraceeState) -> bool:
    """Sleeps a listening tracee until a signal it does not block is
    pending; False if it was detached or killed meanwhile."""

    def done() -> bool:
        ready = task_signals.pending_mask_locked(t) & ~t.signal_mask
        return bool(ready) or t.exiting or t.tg.exiting or t.ptrace is not ps

    _block_until(t, done)
    return t.ptrace is ps and not t.exiting and not t.tg.exiting


def take_interrupt(t: Task) -> bool:
    """Enters the PTRACE_EVENT_STOP that PTRACE_INTERRUPT (or a seized
    auto-attach) asked for, if any. Called by the run loop."""
    ps = t.ptrace
    if ps is None or not ps.interrupt:
        return False
    ps.interrupt = False
    event_stop(t, PT.PTRACE_EVENT_STOP, 0)
    return True


# Events of clone, execve, vfork and exit.


def clone_event(parent: Task, child: Task, event: int, force: bool) -> bool:
    """Auto-attaches child to parent's tracer if the tracer asked for this
    kind of child, or with force (CLONE_PTRACE), before child first runs
    (ptrace_init_task).

    Returns:
        True if the parent must report `event` once the child runs.
    """
    ps = parent.ptrace
    if ps is None:
        return False
    want = {
        PT.PTRACE_EVENT_FORK: PT.PTRACE_O_TRACEFORK,
        PT.PTRACE_EVENT_VFORK: PT.PTRACE_O_TRACEVFORK,
        PT.PTRACE_EVENT_CLONE: PT.PTRACE_O_TRACECLONE,
    }[event]
    report = bool(ps.options & want)
    if not report and not force:
        return False
    with parent.kernel.tasks.mu:
        link_locked(ps.tracer, child, ps.seized, ps.options)
        cps = child.ptrace
        assert cps is not None
        if ps.seized:
            cps.interrupt = True
        else:
            child.pending.enqueue(SignalInfo(signo=S.SIGSTOP, code=S.SI_USER))
        child.interrupted = True
    return report


def exec_event(t: Task, old_tid: int) -> None:
    """Reports a successful execve: PTRACE_EVENT_EXEC, or a plain SIGTRAP
    for a tracee attached without PTRACE_SEIZE (ptrace_event)."""
    ps = t.ptrace
    if ps is None:
        return
    if ps.options & PT.PTRACE_O_TRACEEXEC:
        event_stop(t, PT.PTRACE_EVENT_EXEC, old_tid)
    elif not ps.seized:
        task_signals.send_to_task(t, SignalInfo(signo=S.SIGTRAP, code=S.SI_USER))


def exit_event(t: Task) -> None:
    """Reports PTRACE_EVENT_EXIT before t exits if asked for; never for a
    SIGKILL, which must not wait for the tracer."""
    ps = t.ptrace
    if ps is None or not ps.options & PT.PTRACE_O_TRACEEXIT:
        return
    status = t.tg.exit_status if t.tg.exiting else t.exit_status
    if status & 0x7F == S.SIGKILL:
        return
    event_stop(t, PT.PTRACE_EVENT_EXIT, status, while_exiting=True)


# System call stops.


def syscall_stops(t: Task, dispatch: Callable[[Task], None]) -> None:
    """Runs the system call t stopped at with the syscall-enter and
    syscall-exit stops that PTRACE_SYSCALL asked for.

    At the enter stop rax holds -ENOSYS and the tracer may change the
    number (orig_rax) and arguments; -1 skips the call, leaving rax as the
    tracer set it. At the exit stop it may change the result.
    """
    ps = t.ptrace
    mode = ps.resume if ps is not None else RESUME_CONT
    if mode not in (RESUME_SYSCALL, RESUME_SYSEMU, RESUME_SYSEMU_STEP):
        dispatch(t)
        if mode == RESUME_STEP:
            # The step ends after the system call instruction.
            step_trap(t)
        return
    assert ps is not None
    regs = t.state.regs
    regs[P.RAX] = -ENOSYS & _MASK64
    sig = S.SIGTRAP | (0x80 if ps.options & PT.PTRACE_O_TRACESYSGOOD else 0)
    ps.syscall_op = PT.PTRACE_SYSCALL_INFO_ENTRY
    _syscall_stop(t, sig)
    if mode != RESUME_SYSCALL:
        # The tracer emulated the call: rax is its result.
        return
    if t.exiting or t.tg.exiting:
        t.interrupted = True
        return
    if regs[P.ORIG_RAX] != _MASK64:
        dispatch(t)
    ps = t.ptrace
    if ps is None or ps.resume != RESUME_SYSCALL:
        return
    ps.syscall_op = PT.PTRACE_SYSCALL_INFO_EXIT
    _syscall_stop(t, sig)


def _syscall_stop(t: Task, sig: int) -> None:
    """One syscall-stop; a signal the tracer resumes with is sent to t
    (ptrace_report_syscall)."""
    got = ptrace_stop(t, stop_status(sig), _trap_info(t, sig))
    if got is None:
        return
    got.syscall_op = PT.PTRACE_SYSCALL_INFO_NONE
    if got.resume_signo:
        tracer = got.tracer
        task_signals.send_to_task(
            t,
            SignalInfo(
                signo=got.resume_signo,
                code=S.SI_USER,
                pid=tracer.pid,
                uid=tracer.creds.ruid,
            ),
        )


# Single-stepping sets the trap flag in the application's eflags; the CPU
# then traps after one instruction and the platform reports SIGTRAP.
EFLAGS_TF = 0x100


def step_trap(t: Task) -> None:
    """Queues the SIGTRAP (TRAP_TRACE) that ends a single step that a
    system call completed, and clears the trap flag."""
    t.state.regs[P.EFLAGS] &= ~EFLAGS_TF
    task_signals.force_signal(t, SignalInfo(signo=S.SIGTRAP, code=S.TRAP_TRACE))


def wants_step(t: Task) -> bool:
    """Reports whether t runs one instruction at a time."""
    ps = t.ptrace
    return ps is not None and ps.resume in (RESUME_STEP, RESUME_SYSEMU_STEP)
