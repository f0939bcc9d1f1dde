"""Sending and delivering signals (kernel/signal.c, arch/x86/kernel/signal.c).

Sending queues a SignalInfo on a task or its thread group and interrupts a
task that can take it, after the side effects that happen at send time
(prepare_signal): SIGKILL starts the group exit, SIGCONT continues a stopped
process (task_stop.py), a stop signal discards a pending SIGCONT, and a
signal that would be ignored is dropped unless the receiver blocks it.

Delivery happens on the receiving task's own thread, in its run loop
(handle_interrupt): taking part in a group stop, the default action
(terminate, ignore, stop, continue), or a handler frame built on the
application stack the way the x86-64 kernel builds struct rt_sigframe, which
rt_sigreturn later unwinds.

Lock order: Kernel.tasks.mu, then a SignalHandlers.mu. A process's signal
lock is never held while another process's is taken: notifying a parent is
done after the child's lock is released.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as S
from pkg.abi.linux.sched import CLONE_VFORK, CLONE_VM
from pkg.abi.linux.sysno import SYS_restart_syscall
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel import ptrace, task_stop
from pkg.sentry.kernel.cputime import thread_group_cputime
from pkg.sentry.kernel.futex import exit_futexes
from pkg.sentry.kernel.signals import SigAction, SignalInfo
from pkg.sentry.kernel.waiter import EVENT_IN

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

log = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
_RESTART_CODES = {
    errno.ERESTARTSYS,
    errno.ERESTARTNOINTR,
    errno.ERESTARTNOHAND,
    errno.ERESTART_RESTARTBLOCK,
}

# Stop signals subject to the orphaned process group rule.
_TTY_STOP_MASK = S.sigmask(S.SIGTSTP) | S.sigmask(S.SIGTTIN) | S.sigmask(S.SIGTTOU)

# Nanoseconds per clock tick (USER_HZ), for si_utime and si_stime.
_NS_PER_TICK = 10_000_000


# Sending.


def send_signal(tg: ThreadGroup, target: Task | None, info: SignalInfo) -> bool:
    """Sends a signal to a process (target None) or to one of its threads.

    Returns:
        True if the signal was queued; False if it was dropped (ignored,
        coalesced with a pending instance, or the process is exiting).
    """
    with tg.signal_handlers.mu:
        queued, why = _send_locked(tg, target, info)
    if why:
        notify_parent_cldstop(tg, why)
    return queued


def send_to_thread_group(tg: ThreadGroup, info: SignalInfo) -> bool:
    """Queues a signal for a whole process and wakes a thread to take it."""
    return send_signal(tg, None, info)


def send_to_task(t: Task, info: SignalInfo) -> bool:
    """Queues a signal for one thread (tkill, timers)."""
    return send_signal(t.tg, t, info)


def _send_locked(
    tg: ThreadGroup, target: Task | None, info: SignalInfo
) -> tuple[bool, int]:
    """send_signal_locked: returns (queued, job control event for the
    parent or 0).

    Preconditions: tg's signal lock is held.
    """
    if tg.zombie or not tg.tasks:
        return False, 0
    if target is not None and target.exiting and info.signo != S.SIGKILL:
        return False, 0
    if tg is tg.kernel.init_tg and _init_ignores_locked(tg, target, info):
        return False, 0
    deliver, why = _prepare_signal_locked(tg, target, info.signo)
    if not deliver:
        return False, why
    pending = tg.pending if target is None else target.pending
    signo = info.signo
    if signo < S.SIGRTMIN and pending.mask & S.sigmask(signo):
        # A standard signal already pending: this one merges into it.
        return False, why
    info = _charge_locked(tg, target, info)
    if info is None:
        return False, why
    if not pending.enqueue(info):
        _release(info)
        return False, why
    tg.signal_handlers.signalfd_queue.notify(EVENT_IN)
    _complete_signal_locked(tg, target, info.signo)
    return True, why


def _charge_locked(
    tg: ThreadGroup, target: Task | None, info: SignalInfo
) -> SignalInfo | None:
    """Charges a signal to its receiver's user against RLIMIT_SIGPENDING
    (__sigqueue_alloc).

    Standard signals from the kernel or kill(2) (si_code >= 0) pass the
    limit, as do timer signals, which Linux allocates with the timer. Past
    the limit a real-time signal sent with data fails with EAGAIN; others
    are still sent, without their data.

    Returns:
        The signal to queue, or None if it is dropped.

    Raises:
        SyscallError: EAGAIN for a real-time signal from the application.
    """
    receiver = target if target is not None else tg.leader
    if receiver is None or receiver not in tg.tasks:
        receiver = tg.tasks[0]
    signo = info.signo
    force = info.timer is not None or (signo < S.SIGRTMIN and info.code >= 0)
    limit = tg.limits.soft(L.RLIMIT_SIGPENDING)
    account = tg.kernel.sigpending
    if account.charge(info, receiver.creds.ruid, limit, force):
        return info
    if signo >= S.SIGRTMIN and info.code != S.SI_USER:
        if info.code < 0:
            raise SyscallError(errno.EAGAIN)
        return None
    # The signal goes, its siginfo does not (TRACE_SIGNAL_LOSE_INFO).
    return SignalInfo(signo=signo, code=S.SI_USER)


def _release(info: SignalInfo) -> None:
    if info.account is not None:
        info.account.release(info)


def _prepare_signal_locked(
    tg: ThreadGroup, target: Task | None, signo: int
) -> tuple[bool, int]:
    """Applies the side effects of sending signo (prepare_signal).

    Returns:
        (whether to queue it, job control event for the parent or 0).
    """
    if tg.exiting:
        return False, 0
    why = 0
    bit = S.sigmask(signo)
    if signo == S.SIGKILL:
        # SIGKILL cannot be blocked or handled: the group exits at once.
        _start_group_exit_locked(tg, signo)
        return False, 0
    if bit & S.STOP_MASK:
        tg.pending.discard(S.sigmask(S.SIGCONT))
        for t in tg.tasks:
            t.pending.discard(S.sigmask(S.SIGCONT))
    elif signo == S.SIGCONT:
        why = task_stop.continue_locked(tg)
    return not _sig_ignored_locked(tg, target, signo), why


def _init_ignores_locked(
    tg: ThreadGroup, target: Task | None, info: SignalInfo
) -> bool:
    """Reports whether the container's init drops a signal it has no
    handler for (SIGNAL_UNKILLABLE): every such signal, SIGKILL and SIGSTOP
    included, unless it comes from outside the container (runsc: si_code
    SI_USER with no sender pid in the container) or from the kernel
    (SI_KERNEL), which may still kill and stop it. A blocked signal stays
    pending: a handler may be set before it is unblocked; handle_interrupt
    then skips its default action. Faults (force_signal) are not sent
    through here and still kill."""
    signo = info.signo
    if tg.signal_handlers.actions[signo].handler != S.SIG_DFL:
        return False
    if signo in (S.SIGKILL, S.SIGSTOP) and (
        info.code == S.SI_KERNEL or (info.code == S.SI_USER and info.pid == 0)
    ):
        return False
    receiver = target
    if receiver is None:
        receiver = tg.leader if tg.leader in tg.tasks else tg.tasks[0]
    return not (receiver.signal_mask | receiver.real_blocked) & S.sigmask(signo)


# Signals that faults and seccomp deliver to the task that caused them:
# their default action applies to init too (force_sig_info).
_SYNCHRONOUS = frozenset({S.SIGSEGV, S.SIGBUS, S.SIGILL, S.SIGFPE, S.SIGTRAP, S.SIGSYS})


def _sig_ignored_locked(tg: ThreadGroup, target: Task | None, signo: int) -> bool:
    """Reports whether signo would be dropped (sig_ignored): its action
    ignores it and the receiver does not block it (a blocked signal stays
    pending, as it may be unignored before being unblocked). The
    container's init is protected further by _init_ignores_locked.
    """
    receiver = target
    if receiver is None:
        receiver = tg.leader if tg.leader in tg.tasks else tg.tasks[0]
    bit = S.sigmask(signo)
    if (receiver.signal_mask | receiver.real_blocked) & bit:
        return False
    return handler_ignores(tg.signal_handlers.actions[signo], signo)


def handler_ignores(action: SigAction, signo: int) -> bool:
    """Reports whether an action discards signo (sig_handler_ignored)."""
    handler = action.handler
    if handler == S.SIG_IGN:
        return True
    return handler == S.SIG_DFL and S.default_action(signo) in (
        S.ACTION_IGNORE,
        S.ACTION_CONTINUE,
    )


def _wants_signal(t: Task, bit: int) -> bool:
    return not (t.signal_mask & bit or t.exiting or t.stopped)


def _complete_signal_locked(tg: ThreadGroup, target: Task | None, signo: int) -> None:
    """Wakes a thread to take a queued signal (complete_signal)."""
    bit = S.sigmask(signo)
    if target is not None:
        if not _wants_signal(target, bit):
            return
        chosen = target
    else:
        # The leader first, then any thread that is not already busy with
        # another signal, then any that can take it.
        candidates = [t for t in tg.tasks if _wants_signal(t, bit)]
        if not candidates:
            return
        chosen = next((t for t in candidates if t is tg.leader), None)
        if chosen is None:
            chosen = next((t for t in candidates if not t.interrupted), candidates[0])

    # A fatal signal that nobody handles kills every thread now rather than
    # when the chosen one gets to it, unless it dumps core or a tracer must
    # see it first (complete_signal).
    action = tg.signal_handlers.actions[signo]
    if (
        action.handler == S.SIG_DFL
        and S.default_action(signo) == S.ACTION_TERM
        and not chosen.real_blocked & bit
        and chosen.ptrace is None
    ):
        _start_group_exit_locked(tg, signo)
        return
    chosen.interrupt()


def _start_group_exit_locked(tg: ThreadGroup, status: int) -> None:
    """Makes every thread of tg exit with wait status `status`."""
    if tg.exiting:
        return
    tg.exiting = True
    tg.exit_status = status
    tg.group_stop_count = 0
    for t in tg.tasks:
        t.exiting = True
        t.stop_pending = False
        t.interrupt()


def group_exit(t: Task, status: int) -> None:
    """Starts exiting the whole process of t (exit_group, fatal signals)."""
    with t.tg.signal_handlers.mu:
        _start_group_exit_locked(t.tg, status)
        t.exiting = True
        t.interrupted = True


def force_signal(t: Task, info: SignalInfo, force_default: bool = False) -> None:
    """Delivers a synchronous signal that the task caused (a fault, a trap).

    As force_sig_info_to_task does, a blocked or ignored synchronous signal
    is unblocked and reset to its default action so that it kills; with
    force_default (a seccomp kill), the default action is taken even if a
    handler is installed.
    """
    sh = t.tg.signal_handlers
    with sh.mu:
        bit = S.sigmask(info.signo)
        action = sh.actions[info.signo]
        blocked = t.signal_mask & bit
        if blocked or action.handler == S.SIG_IGN or force_default:
            action.handler = S.SIG_DFL
            t.signal_mask &= ~bit
        if force_default:
            # Nothing may intercept it now: a pending instance would.
            t.pending.discard(bit)
            t.tg.pending.discard(bit)
        if t.pending.enqueue(info):
            sh.signalfd_queue.notify(EVENT_IN)
        t.interrupted = True


def notify_parent_cldstop(tg: ThreadGroup, why: int) -> None:
    """Tells tg's parent that tg stopped or continued
    (do_notify_parent_cldstop).

    The parent gets SIGCHLD unless it ignores SIGCHLD or set SA_NOCLDSTOP,
    and its wait queue is woken either way. Called without tg's signal lock.
    """
    parent = tg.parent
    if parent is None:
        return
    with tg.signal_handlers.mu:
        status = S.SIGCONT if why == S.CLD_CONTINUED else tg.stop_signo & 0x7F
    leader = tg.leader
    user, system = thread_group_cputime(tg)
    info = SignalInfo(
        signo=S.SIGCHLD,
        code=why,
        pid=tg.tgid,
        uid=leader.creds.ruid if leader is not None else 0,
        status=status,
        utime=user // _NS_PER_TICK,
        stime=system // _NS_PER_TICK,
    )
    psh = parent.signal_handlers
    with psh.mu:
        action = psh.actions[S.SIGCHLD]
        wanted = action.handler != S.SIG_IGN and not action.flags & S.SA_NOCLDSTOP
    if wanted:
        send_to_thread_group(parent, info)
    log.debug("signals: tgid=%d job control event %d", tg.tgid, why)
    parent.wait_queue.notify(EVENT_IN)


def is_pgrp_orphaned(tg: ThreadGroup) -> bool:
    """Reports whether tg's process group is orphaned: no member has a
    parent in another process group of the same session
    (will_become_orphaned_pgrp). Takes Kernel.tasks.mu."""
    tasks = tg.kernel.tasks
    with tasks.mu:
        for g in tasks.thread_groups.values():
            if g.pgid != tg.pgid or g.zombie or g.exiting:
                continue
            p = g.parent
            if p is not None and p.pgid != g.pgid and p.sid == g.sid:
                return False
    return True


# Process lifecycle: what clone and execve do to signal state. The tasks
# code that implements clone(2) and execve(2) calls these.


def inherit_for_clone(parent: Task, child: Task, flags: int) -> None:
    """Gives a new task what it inherits of its creator's signal, seccomp
    and alternate stack state (copy_process).

    The child starts with the parent's mask, no pending signals and the
    parent's seccomp filters; it keeps the alternate stack unless it shares
    the address space without CLONE_VFORK.
    """
    child.signal_mask = parent.signal_mask
    child.seccomp_mode = parent.seccomp_mode
    child.seccomp_filter = parent.seccomp_filter
    if flags & CLONE_VM and not flags & CLONE_VFORK:
        child.altstack = (0, S.SS_DISABLE, 0)
    else:
        child.altstack = parent.altstack


def join_group_stop_locked(child: Task) -> None:
    """Makes a thread joining a process take part in its group stop, if one
    is in progress or done (task_join_group_stop).

    Preconditions: the signal lock is held and child is in its tg.tasks.
    """
    tg = child.tg
    if tg.group_stop_count:
        tg.group_stop_count += 1
        child.stop_pending = True
        child.interrupted = True
    elif tg.stopped:
        child.stop_pending = True
        child.interrupted = True


def exec_signals(t: Task) -> None:
    """Applies execve's changes to the signal state of the task that execs,
    once it is the only thread of its process (setup_new_exec,
    flush_signal_handlers, exit_itimers, exec_mm_release).

    Handlers are reset to SIG_DFL (ignored signals stay ignored), the
    alternate stack is cleared, POSIX timers are deleted (ITIMER_* stay),
    robust and PI futexes of the old image are released. The mask, pending
    signals and seccomp filters are kept.
    """
    exit_futexes(t)
    t.robust_list = (0, 0)
    t.tg.signal_handlers.reset_for_exec()
    with t.tg.signal_handlers.mu:
        t.altstack = (0, S.SS_DISABLE, 0)
        t.saved_mask = None
        t.restart_block = None
    t.tg.timers.on_exec()


# Delivery.


def recalc_interrupted_locked(t: Task) -> None:
    """Sets t.interrupted if it has a deliverable signal, a stop to take
    part in, or must exit."""
    if t.exiting or t.tg.exiting or t.stop_pending:
        t.interrupted = True
        return
    ready = (t.pending.mask | t.tg.pending.mask) & ~t.signal_mask
    if ready:
        t.interrupted = True


def dequeue_signal_locked(t: Task, blocked: int) -> SignalInfo | None:
    """Removes the next signal not in blocked: the thread's own first, then
    the process's (dequeue_signal)."""
    info = t.pending.dequeue(blocked)
    if info is None:
        info = t.tg.pending.dequeue(blocked)
    return info


def pending_mask_locked(t: Task) -> int:
    """Returns the signals pending for t or its process."""
    return t.pending.mask | t.tg.pending.mask


def handle_interrupt(t: Task, restart_errno: int) -> bool:
    """Runs the signal part of the task's interrupt state (get_signal).

    Args:
        t: the task, on its own thread.
        restart_errno: the restart code the last system call returned, or 0.

    Returns:
        False if the task must exit, True to return to application code.
    """
    tg = t.tg
    sh = tg.signal_handlers
    # A signal the tracer let through (or chose) at a signal-delivery-stop.
    injected: SignalInfo | None = None
    while True:
        if t.ptrace is not None and ptrace.take_interrupt(t):
            continue
        # Whether the process group is orphaned takes the task set lock,
        # which must not be taken under the signal lock: look first.
        orphaned = False
        if (t.pending.mask | tg.pending.mask) & _TTY_STOP_MASK:
            orphaned = is_pgrp_orphaned(tg)
        why = 0
        traced: SignalInfo | None = None
        with sh.mu:
            t.interrupted = False
            if t.exiting or tg.exiting:
                t.exiting = True
                return False
            if t.stop_pending:
                if task_stop.participate_locked(t):
                    why = S.CLD_STOPPED
            else:
                if injected is not None:
                    info = injected
                    injected = None
                    if t.signal_mask & S.sigmask(info.signo):
                        # A blocked signal the tracer chose waits its turn.
                        if t.pending.enqueue(info):
                            sh.signalfd_queue.notify(EVENT_IN)
                        continue
                else:
                    info = dequeue_signal_locked(t, t.signal_mask)
                    if info is None:
                        _finish_interrupt_locked(t, restart_errno)
                        return True
                    if t.ptrace is not None:
                        traced = info
                if traced is None:
                    signo = info.signo
                    action = sh.actions[signo]
                    handler = action.handler
                    if handler == S.SIG_IGN:
                        continue
                    if handler == S.SIG_DFL:
                        kind = S.default_action(signo)
                        if kind in (S.ACTION_IGNORE, S.ACTION_CONTINUE):
                            continue
                        if (
                            tg is tg.kernel.init_tg
                            and signo not in (S.SIGKILL, S.SIGSTOP)
                            and signo not in _SYNCHRONOUS
                        ):
                            # Init ignores what it queued blocked and does not
                            # handle (SIGNAL_UNKILLABLE).
                            continue
                        if kind == S.ACTION_STOP:
                            if signo != S.SIGSTOP and orphaned:
                                # Job control stops of an orphaned process
                                # group are discarded (POSIX).
                                continue
                            if task_stop.initiate_stop_locked(t, signo):
                                why = S.CLD_STOPPED
                        else:
                            # Terminate, with or without a core dump. Unlike
                            # Linux, no core is ever written, so the wait
                            # status never has WCOREDUMP set.
                            _start_group_exit_locked(tg, signo)
                            t.exiting = True
                            return False
                    else:
                        if _deliver_handler_locked(t, info, action, restart_errno):
                            restart_errno = 0
                            _finish_interrupt_locked(t, 0)
                            return True
                        # The frame could not be written: SIGSEGV is queued.
                        restart_errno = 0
                        continue
        if traced is not None:
            # The tracer sees the signal first (ptrace_signal).
            injected = ptrace.signal_delivery_stop(t, traced)
            restart_errno = _restart_after_ptrace_stop(t, restart_errno)
            continue
        if why:
            notify_parent_cldstop(tg, why)
        while t.stopped and not (t.exiting or tg.exiting):
            if t.ptrace is not None:
                ptrace.group_stop(t, tg.stop_signo or S.SIGSTOP)
            else:
                task_stop.wait_while_stopped(t)


def _restart_after_ptrace_stop(t: Task, restart_errno: int) -> int:
    """Drops a pending restart that the tracer undid by changing rax or
    orig_rax at a stop (Linux decides on the registers themselves)."""
    if not restart_errno:
        return 0
    regs = t.state.regs
    if regs[P.ORIG_RAX] == _MASK64 or regs[P.RAX] != -restart_errno & _MASK64:
        return 0
    return restart_errno


def _finish_interrupt_locked(t: Task, restart_errno: int) -> None:
    if restart_errno:
        # No handler ran: the call restarts transparently (or, for
        # ERESTART_RESTARTBLOCK, through restart_syscall).
        _restart(t, restart_errno)
    if t.saved_mask is not None:
        t.signal_mask = t.saved_mask
        t.saved_mask = None
    recalc_interrupted_locked(t)


def _deliver_handler_locked(
    t: Task, info: SignalInfo, action: SigAction, restart_errno: int
) -> bool:
    """Runs a handler: resolves the interrupted call's restart, pushes the
    frame and blocks the handler's mask (handle_signal).

    Returns False if the frame could not be written (SIGSEGV is queued).
    """
    if restart_errno:
        _resolve_restart(t, restart_errno, action.flags)
    old_mask = t.saved_mask if t.saved_mask is not None else t.signal_mask
    t.saved_mask = None
    handler = action.handler
    if action.flags & S.SA_RESETHAND:
        action.handler = S.SIG_DFL
    if not _setup_frame_locked(t, info, handler, action, old_mask):
        return False
    new_mask = t.signal_mask | action.mask
    if not action.flags & S.SA_NODEFER:
        new_mask |= S.sigmask(info.signo)
    t.signal_mask = new_mask & ~S.UNBLOCKABLE_MASK
    return True


def _resolve_restart(t: Task, code: int, sa_flags: int) -> None:
    regs = t.state.regs
    if code == errno.ERESTARTNOINTR or (
        code == errno.ERESTARTSYS and sa_flags & S.SA_RESTART
    ):
        _restart(t, code)
    else:
        regs[P.RAX] = -errno.EINTR & _MASK64


def _restart(t: Task, code: int) -> None:
    regs = t.state.regs
    if code == errno.ERESTART_RESTARTBLOCK:
        regs[P.RAX] = SYS_restart_syscall
    else:
        regs[P.RAX] = regs[P.ORIG_RAX]
    regs[P.RIP] = (regs[P.RIP] - 2) & _MASK64


# The alternate signal stack.


def _on_sig_stack_raw(t: Task, sp: int) -> bool:
    ss_sp, _flags, ss_size = t.altstack
    return ss_sp < sp and sp - ss_sp <= ss_size


def on_sig_stack(t: Task, sp: int) -> bool:
    """Reports whether sp is on t's alternate stack (on_sig_stack); never
    with SS_AUTODISARM, which lets handlers nest on the stack."""
    if t.altstack[1] & S.SS_AUTODISARM:
        return False
    return _on_sig_stack_raw(t, sp)


def sas_ss_flags(t: Task, sp: int) -> int:
    """Returns SS_DISABLE, SS_ONSTACK or 0 for t's alternate stack at sp."""
    if not t.altstack[2]:
        return S.SS_DISABLE
    return S.SS_ONSTACK if on_sig_stack(t, sp) else 0


def do_sigaltstack(t: Task, sp: int, ss_sp: int, ss_flags: int, ss_size: int) -> None:
    """Changes t's alternate stack as sigaltstack(2) does, with the
    application's stack pointer sp.

    Raises:
        SyscallError: EPERM while on the alternate stack, EINVAL for a bad
            mode, ENOMEM for a stack smaller than MINSIGSTKSZ.
    """
    if on_sig_stack(t, sp):
        raise SyscallError(errno.EPERM)
    mode = ss_flags & ~S.SS_FLAG_BITS
    if mode not in (0, S.SS_DISABLE, S.SS_ONSTACK):
        raise SyscallError(errno.EINVAL)
    if mode == S.SS_DISABLE:
        ss_sp = ss_size = 0
    elif ss_size < S.MINSIGSTKSZ:
        raise SyscallError(errno.ENOMEM)
    t.altstack = (ss_sp, ss_flags, ss_size)


# Frames.

# struct rt_sigframe: pretcode, struct ucontext, struct siginfo.
_UC_FLAGS_OFF = 8
_UC_STACK_OFF = 24
_UC_MCONTEXT_OFF = 48
_UC_SIGMASK_OFF = _UC_MCONTEXT_OFF + 256
_INFO_OFF = _UC_SIGMASK_OFF + 8
_FRAME_SIZE = _INFO_OFF + S.SIGINFO_SIZE
_UC_FP_XSTATE = 0x1
_UC_SIGCONTEXT_SS = 0x2
_UC_STRICT_RESTORE_SS = 0x4
_STACK_T = struct.Struct("<QIIQ")
# struct sigcontext: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
# eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate, reserved[8].
_SIGCONTEXT = struct.Struct("<18QHHHH5Q64x")
_RED_ZONE = 128
# fx_sw_bytes lives in the software-reserved tail of the FXSAVE area.
_FP_XSTATE_MAGIC1 = 0x46505853
_FP_XSTATE_MAGIC2 = 0x46505845
_FP_XSTATE_MAGIC2_SIZE = 4
_SW_BYTES_OFF = 464
_SW_BYTES = struct.Struct("<IIQI")
_FXSAVE_SIZE = 512
_XSTATE_BV_OFF = 512
_XFEATURES_FP_SSE = 3

# eflags bits the application may change through sigreturn (FIX_EFLAGS).
_FIX_EFLAGS = 0x40DD5
_EFLAGS_TF = 0x100
_EFLAGS_DF = 0x400
_EFLAGS_RF = 0x10000


def _setup_frame_locked(
    t: Task, info: SignalInfo, handler: int, action: SigAction, old_mask: int
) -> bool:
    """Pushes an rt_sigframe and points the registers at the handler
    (get_sigframe, x64_setup_rt_frame).

    Returns False (after forcing SIGSEGV) if the frame cannot be written.
    """
    regs = t.state.regs
    user_sp = regs[P.RSP]
    ss_sp, ss_flags, ss_size = t.altstack
    nested = on_sig_stack(t, user_sp)
    entering = False
    sp = (user_sp - _RED_ZONE) & _MASK64
    if action.flags & S.SA_ONSTACK and sas_ss_flags(t, user_sp) == 0:
        sp = ss_sp + ss_size
        entering = True

    # The XSAVE image goes above the frame, 64-byte aligned.
    if not t.state.fpstate_valid:
        t.context.pull_fpstate(t.state)
    fp = bytearray(t.state.fpstate)
    magic1, _ext, xfeatures, _size = _SW_BYTES.unpack_from(fp, _SW_BYTES_OFF)
    if magic1 != _FP_XSTATE_MAGIC1 or not xfeatures:
        xfeatures = _xfeatures_from_bv(fp)
    _SW_BYTES.pack_into(
        fp,
        _SW_BYTES_OFF,
        _FP_XSTATE_MAGIC1,
        len(fp) + _FP_XSTATE_MAGIC2_SIZE,
        xfeatures,
        len(fp),
    )
    fp += struct.pack("<I", _FP_XSTATE_MAGIC2)
    fp_addr = (sp - len(fp)) & ~63
    frame = ((fp_addr - _FRAME_SIZE) & ~15) - 8

    if (nested or entering) and not _on_sig_stack_raw(t, frame):
        # The frame would overflow the alternate stack: a bogus address,
        # so that the task dies of SIGSEGV.
        log.debug("signals: tid=%d alternate stack overflow", t.tid)
        _force_sigsegv_locked(t, info.signo)
        return False

    sigcontext = _SIGCONTEXT.pack(
        regs[P.R8], regs[P.R9], regs[P.R10], regs[P.R11],
        regs[P.R12], regs[P.R13], regs[P.R14], regs[P.R15],
        regs[P.RDI], regs[P.RSI], regs[P.RBP], regs[P.RBX],
        regs[P.RDX], regs[P.RAX], regs[P.RCX], regs[P.RSP],
        regs[P.RIP], regs[P.EFLAGS],
        regs[P.CS], 0, 0, regs[P.SS],
        0, _trapno(info), old_mask, info.addr if info.signo == S.SIGSEGV else 0,
        fp_addr,
    )  # fmt: skip
    buf = bytearray(_FRAME_SIZE)
    struct.pack_into("<Q", buf, 0, action.restorer)
    struct.pack_into(
        "<QQ",
        buf,
        _UC_FLAGS_OFF,
        _UC_FP_XSTATE | _UC_SIGCONTEXT_SS | _UC_STRICT_RESTORE_SS,
        0,
    )
    _STACK_T.pack_into(buf, _UC_STACK_OFF, ss_sp, ss_flags, 0, ss_size)
    buf[_UC_MCONTEXT_OFF : _UC_MCONTEXT_OFF + 256] = sigcontext
    struct.pack_into("<Q", buf, _UC_SIGMASK_OFF, old_mask)
    buf[_INFO_OFF:] = info.pack()
    try:
        t.mm.copy_out(fp_addr, fp)
        t.mm.copy_out(frame, buf)
    except SyscallError:
        log.debug(
            "signals: tid=%d cannot write frame for %d at %#x", t.tid, info.signo, frame
        )
        _force_sigsegv_locked(t, info.signo)
        return False

    if ss_flags & S.SS_AUTODISARM:
        t.altstack = (0, S.SS_DISABLE, 0)
    regs[P.RSP] = frame
    regs[P.RIP] = handler
    regs[P.RDI] = info.signo
    regs[P.RSI] = frame + _INFO_OFF
    regs[P.RDX] = frame + _UC_FLAGS_OFF
    regs[P.RAX] = 0
    regs[P.EFLAGS] &= ~(_EFLAGS_DF | _EFLAGS_RF | _EFLAGS_TF)
    regs[P.CS] = P.USER_CS
    regs[P.SS] = P.USER_DS
    # Handlers start with a clean FPU, as fpu__clear_user_states does.
    _init_fpstate(t)
    return True


def _xfeatures_from_bv(fp: bytearray) -> int:
    if len(fp) <= _XSTATE_BV_OFF:
        return _XFEATURES_FP_SSE
    return struct.unpack_from("<Q", fp, _XSTATE_BV_OFF)[0] | _XFEATURES_FP_SSE


def _trapno(info: SignalInfo) -> int:
    return {S.SIGSEGV: 14, S.SIGFPE: 0, S.SIGILL: 6, S.SIGTRAP: 3}.get(info.signo, 0)


def _init_fpstate(t: Task) -> None:
    # FXSAVE defaults: FCW 0x37f, MXCSR 0x1f80; no extended state in use.
    fp = t.state.fpstate
    sw = bytes(fp[_SW_BYTES_OFF:_FXSAVE_SIZE])
    fp[:] = bytes(len(fp))
    struct.pack_into("<H", fp, 0, 0x37F)
    struct.pack_into("<I", fp, 24, 0x1F80)
    struct.pack_into("<I", fp, 28, 0xFFFF)
    fp[_SW_BYTES_OFF:_FXSAVE_SIZE] = sw
    t.state.fpstate_valid = True
    t.state.fpstate_dirty = True


def _force_sigsegv_locked(t: Task, signo: int) -> None:
    # force_sigsegv: a handler for SIGSEGV itself cannot be trusted anymore.
    sh = t.tg.signal_handlers
    if signo == S.SIGSEGV:
        sh.actions[S.SIGSEGV].handler = S.SIG_DFL
    t.signal_mask &= ~S.sigmask(S.SIGSEGV)
    t.pending.enqueue(SignalInfo(signo=S.SIGSEGV, code=S.SI_KERNEL))
    t.interrupted = True


def _restore_fpstate(t: Task, fp_addr: int) -> bool:
    """Loads the FPU image a frame points at (fpu__restore_sig).

    A frame whose software bytes announce an XSAVE image restores it whole;
    a plain FXSAVE image restores the x87 and SSE state and resets the rest.
    Returns False if the image cannot be read.
    """
    state = t.state
    size = len(state.fpstate)
    try:
        legacy = t.mm.copy_in(fp_addr, _FXSAVE_SIZE)
    except SyscallError:
        return False
    magic1, ext_size, _xfeatures, xstate_size = _SW_BYTES.unpack_from(
        legacy, _SW_BYTES_OFF
    )
    extended = (
        magic1 == _FP_XSTATE_MAGIC1
        and xstate_size == size
        and ext_size == size + _FP_XSTATE_MAGIC2_SIZE
        and size > _FXSAVE_SIZE
    )
    if extended:
        try:
            image = t.mm.copy_in(fp_addr, size + _FP_XSTATE_MAGIC2_SIZE)
        except SyscallError:
            return False
        (magic2,) = struct.unpack_from("<I", image, size)
        extended = magic2 == _FP_XSTATE_MAGIC2
    if extended:
        state.fpstate[:] = image[:size]
    else:
        _init_fpstate(t)
        state.fpstate[:_SW_BYTES_OFF] = legacy[:_SW_BYTES_OFF]
        if size > _XSTATE_BV_OFF:
            bv = struct.unpack_from("<Q", state.fpstate, _XSTATE_BV_OFF)[0]
            struct.pack_into(
                "<Q", state.fpstate, _XSTATE_BV_OFF, bv | _XFEATURES_FP_SSE
            )
    state.fpstate_valid = True
    state.fpstate_dirty = True
    return True


def sigreturn(t: Task) -> int:
    """Restores the context saved by _setup_frame_locked (rt_sigreturn).

    Returns:
        The restored rax, which the dispatcher writes back unchanged.
    """
    regs = t.state.regs
    # The handler returned through the restorer, popping pretcode.
    frame = (regs[P.RSP] - 8) & _MASK64
    try:
        buf = t.mm.copy_in(frame, _FRAME_SIZE)
    except SyscallError:
        with t.tg.signal_handlers.mu:
            _force_sigsegv_locked(t, 0)
        return regs[P.RAX]
    vals = _SIGCONTEXT.unpack_from(buf, _UC_MCONTEXT_OFF)
    (
        r8, r9, r10, r11, r12, r13, r14, r15,
        rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp,
        rip, eflags, _cs, _gs, _fs, _ss,
        _err, _trap, _oldmask, _cr2, fp_addr,
    ) = vals  # fmt: skip
    (mask,) = struct.unpack_from("<Q", buf, _UC_SIGMASK_OFF)
    ss_sp, ss_flags, _pad, ss_size = _STACK_T.unpack_from(buf, _UC_STACK_OFF)
    for idx, v in (
        (P.R8, r8), (P.R9, r9), (P.R10, r10), (P.R11, r11),
        (P.R12, r12), (P.R13, r13), (P.R14, r14), (P.R15, r15),
        (P.RDI, rdi), (P.RSI, rsi), (P.RBP, rbp), (P.RBX, rbx),
        (P.RDX, rdx), (P.RAX, rax), (P.RCX, rcx), (P.RSP, rsp), (P.RIP, rip),
    ):  # fmt: skip
        regs[idx] = v
    regs[P.EFLAGS] = (regs[P.EFLAGS] & ~_FIX_EFLAGS) | (eflags & _FIX_EFLAGS)
    regs[P.CS] = P.USER_CS
    regs[P.SS] = P.USER_DS
    # Never restart a call from a restored context, nor through a restart
    # block left from before the handler.
    regs[P.ORIG_RAX] = _MASK64
    t.restart_block = None
    if fp_addr:
        if not _restore_fpstate(t, fp_addr):
            with t.tg.signal_handlers.mu:
                _force_sigsegv_locked(t, 0)
            return rax
    else:
        _init_fpstate(t)
    with t.tg.signal_handlers.mu:
        t.signal_mask = mask & ~S.UNBLOCKABLE_MASK
        recalc_interrupted_locked(t)
    # restore_altstack: errors are ignored, as the kernel does.
    with contextlib.suppress(SyscallError):
        do_sigaltstack(t, rsp, ss_sp, ss_flags, ss_size)
    return rax


def is_restart_code(ret: int) -> bool:
    """Reports whether a handler's negative return is a restart code."""
    return -ret in _RESTART_CODES
