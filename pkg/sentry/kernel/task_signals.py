"""Sending and delivering signals (kernel/signal.c, arch/x86/kernel/signal.c).

Sending queues a SignalInfo on a task or its thread group and interrupts a
task that can take it. Delivery happens on the receiving task's own thread,
in its run loop: the default action (terminate, ignore, stop, continue), or a
handler frame built on the application stack the way the x86-64 kernel builds
struct rt_sigframe, which rt_sigreturn later unwinds.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux.sysno import SYS_restart_syscall
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel.signals import SignalInfo

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
# stack_t with ss_flags unsigned, so SS_AUTODISARM (bit 31) is a plain bit.
_STACK_T = struct.Struct("<QIiQ")
# struct sigcontext: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
# eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate, reserved[8].
_SIGCONTEXT = struct.Struct("<18QHHHH5Q64x")
_RED_ZONE = 128
# fx_sw_bytes lives in the software-reserved tail of the FXSAVE area.
_FP_XSTATE_MAGIC1 = 0x46505853
_FP_XSTATE_MAGIC2 = 0x46505845
_SW_BYTES_OFF = 464
_SW_BYTES = struct.Struct("<IIQI")
_XSTATE_BV_OFF = 512

# eflags bits the application may change through sigreturn (FIX_EFLAGS).
_FIX_EFLAGS = 0x40DD5
_EFLAGS_TF = 0x100
_EFLAGS_DF = 0x400
_EFLAGS_RF = 0x10000
_EFLAGS_AC = 0x40000


# Sending.


def send_to_thread_group(tg: ThreadGroup, info: SignalInfo) -> None:
    """Queues a signal for a whole process and wakes a thread to take it."""
    sh = tg.signal_handlers
    with sh.mu:
        if tg.zombie or not tg.tasks:
            return
        if _prepare_signal_locked(tg, info.signo):
            return
        if not tg.pending.enqueue(info):
            return
        _notify_group_locked(tg, info.signo)


def send_to_task(t: Task, info: SignalInfo) -> None:
    """Queues a signal for one thread (tkill, faults, timers)."""
    sh = t.tg.signal_handlers
    with sh.mu:
        if t.exiting and info.signo != S.SIGKILL:
            return
        if _prepare_signal_locked(t.tg, info.signo):
            return
        if not t.pending.enqueue(info):
            return
        if info.signo == S.SIGKILL or not t.signal_mask & S.sigmask(info.signo):
            t.interrupt()


def _prepare_signal_locked(tg: ThreadGroup, signo: int) -> bool:
    """Applies the side effects of sending signo; returns True if it is to be
    discarded (ignored, or the process is already dying)."""
    if tg.exiting:
        return True
    if signo == S.SIGKILL:
        # SIGKILL cannot be blocked or handled: the group exits at once.
        _start_group_exit_locked(tg, signo)
        return True
    # Ignored signals are dropped at send time, unless blocked by every
    # thread (they may be unignored before being unblocked).
    if tg.signal_handlers.is_ignored(signo):
        blocked_everywhere = all(t.signal_mask & S.sigmask(signo) for t in tg.tasks)
        if not blocked_everywhere:
            return True
    return False


def _notify_group_locked(tg: ThreadGroup, signo: int) -> None:
    bit = S.sigmask(signo)
    for t in tg.tasks:
        if not t.signal_mask & bit and not t.exiting:
            t.interrupt()
            return


def _start_group_exit_locked(tg: ThreadGroup, status: int) -> None:
    """Makes every thread of tg exit with wait status `status`."""
    if tg.exiting:
        return
    tg.exiting = True
    tg.exit_status = status
    for t in tg.tasks:
        t.exiting = True
        t.interrupt()


def group_exit(t: Task, status: int) -> None:
    """Starts exiting the whole process of t (exit_group, fatal signals)."""
    with t.tg.signal_handlers.mu:
        _start_group_exit_locked(t.tg, status)
        t.exiting = True
        t.interrupted = True


def force_signal(t: Task, info: SignalInfo) -> None:
    """Delivers a synchronous signal that the task caused (a fault, a trap).

    As force_sig_info_to_task does, a blocked or ignored synchronous signal
    is unblocked and reset to its default action so that it kills.
    """
    sh = t.tg.signal_handlers
    with sh.mu:
        bit = S.sigmask(info.signo)
        action = sh.actions[info.signo]
        if t.signal_mask & bit or action.handler == S.SIG_IGN:
            action.handler = S.SIG_DFL
            t.signal_mask &= ~bit
        t.pending.enqueue(info)
        t.interrupted = True


# Delivery.


def recalc_interrupted_locked(t: Task) -> None:
    """Sets t.interrupted if it has a deliverable signal or must exit."""
    if t.exiting or t.tg.exiting:
        t.interrupted = True
        return
    ready = (t.pending.mask | t.tg.pending.mask) & ~t.signal_mask
    if ready:
        t.interrupted = True


def handle_interrupt(t: Task, restart_errno: int) -> bool:
    """Runs the signal part of the task's interrupt state.

    Args:
        t: the task, on its own thread.
        restart_errno: the restart code the last system call returned, or 0.

    Returns:
        False if the task must exit, True to return to application code.
    """
    sh = t.tg.signal_handlers
    with sh.mu:
        t.interrupted = False
        if t.exiting or t.tg.exiting:
            t.exiting = True
            return False
        while True:
            info = t.pending.dequeue(t.signal_mask)
            if info is None:
                info = t.tg.pending.dequeue(t.signal_mask)
            if info is None:
                break
            action = sh.actions[info.signo]
            handler = action.handler
            if handler == S.SIG_IGN:
                continue
            if handler == S.SIG_DFL:
                kind = S.default_action(info.signo)
                if kind in (S.ACTION_IGNORE, S.ACTION_CONTINUE):
                    continue
                if kind == S.ACTION_STOP:
                    # TODO(#4): group stop; until then stop signals are
                    # treated as ignored.
                    log.warning(
                        "signals: tid=%d ignoring stop signal %d", t.tid, info.signo
                    )
                    continue
                _start_group_exit_locked(t.tg, info.signo)
                t.exiting = True
                return False
            # A handler: build its frame, restarting or failing the
            # interrupted system call first.
            if restart_errno:
                _resolve_restart(t, restart_errno, action.flags)
                restart_errno = 0
            old_mask = t.saved_mask if t.saved_mask is not None else t.signal_mask
            t.saved_mask = None
            if not _setup_frame_locked(t, info, action, old_mask):
                continue
            new_mask = t.signal_mask | action.mask
            if not action.flags & S.SA_NODEFER:
                new_mask |= S.sigmask(info.signo)
            t.signal_mask = new_mask & ~S.UNBLOCKABLE_MASK
            if action.flags & S.SA_RESETHAND:
                action.handler = S.SIG_DFL
            break
        if restart_errno:
            # No handler ran: the call restarts transparently.
            _restart(t, restart_errno)
        if t.saved_mask is not None:
            t.signal_mask = t.saved_mask
            t.saved_mask = None
        recalc_interrupted_locked(t)
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


def _on_altstack(t: Task, sp: int) -> bool:
    ss_sp, _flags, ss_size = t.altstack
    return ss_size != 0 and ss_sp < sp <= ss_sp + ss_size


def _setup_frame_locked(
    t: Task, info: SignalInfo, action: object, old_mask: int
) -> bool:
    """Pushes an rt_sigframe and points the registers at the handler.

    Returns False (after forcing SIGSEGV) if the frame cannot be written.
    """
    regs = t.state.regs
    sp = regs[P.RSP]
    ss_sp, ss_flags, ss_size = t.altstack
    on_stack = _on_altstack(t, sp)
    if action.flags & S.SA_ONSTACK and ss_size and not on_stack:
        sp = ss_sp + ss_size
        if ss_flags & S.SS_AUTODISARM:
            t.altstack = (0, S.SS_DISABLE, 0)
    else:
        sp -= _RED_ZONE

    # The XSAVE image goes above the frame, 64-byte aligned.
    if not t.state.fpstate_valid:
        t.context.pull_fpstate(t.state)
    fp = bytearray(t.state.fpstate)
    fp_size = len(fp) + 4
    _SW_BYTES.pack_into(
        fp, _SW_BYTES_OFF, _FP_XSTATE_MAGIC1, fp_size, _xfeatures(fp), len(fp)
    )
    fp += struct.pack("<I", _FP_XSTATE_MAGIC2)
    fp_addr = (sp - len(fp)) & ~63
    frame = ((fp_addr - _FRAME_SIZE) & ~15) - 8

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
    # __save_altstack records the flags as set, SS_AUTODISARM included, so
    # that sigreturn re-arms a stack the handler ran disarmed.
    uc_stack = _STACK_T.pack(ss_sp, ss_flags, 0, ss_size)
    buf = bytearray(_FRAME_SIZE)
    struct.pack_into("<Q", buf, 0, action.restorer)
    struct.pack_into(
        "<QQ",
        buf,
        _UC_FLAGS_OFF,
        _UC_FP_XSTATE | _UC_SIGCONTEXT_SS | _UC_STRICT_RESTORE_SS,
        0,
    )
    buf[_UC_STACK_OFF : _UC_STACK_OFF + _STACK_T.size] = uc_stack
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

    regs[P.RSP] = frame
    regs[P.RIP] = action.handler
    regs[P.RDI] = info.signo
    regs[P.RSI] = frame + _INFO_OFF
    regs[P.RDX] = frame + _UC_FLAGS_OFF
    regs[P.RAX] = 0
    regs[P.EFLAGS] &= ~(_EFLAGS_DF | _EFLAGS_RF | _EFLAGS_TF)
    regs[P.CS] = P.USER_CS
    regs[P.SS] = P.USER_DS
    # Handlers start with a clean FPU, as fpu__clear_user_states does.
    t.state.fpstate_valid = False
    _init_fpstate(t)
    return True


def _xfeatures(fp: bytearray) -> int:
    if len(fp) <= _XSTATE_BV_OFF:
        return 3
    return struct.unpack_from("<Q", fp, _XSTATE_BV_OFF)[0] | 3


def _trapno(info: SignalInfo) -> int:
    return {S.SIGSEGV: 14, S.SIGFPE: 0, S.SIGILL: 6, S.SIGTRAP: 3}.get(info.signo, 0)


def _init_fpstate(t: Task) -> None:
    # FXSAVE defaults: FCW 0x37f, MXCSR 0x1f80; no extended state in use.
    fp = t.state.fpstate
    fp[:] = bytes(len(fp))
    struct.pack_into("<H", fp, 0, 0x37F)
    struct.pack_into("<I", fp, 24, 0x1F80)
    struct.pack_into("<I", fp, 28, 0xFFFF)
    if len(fp) > _XSTATE_BV_OFF:
        struct.pack_into("<Q", fp, _XSTATE_BV_OFF, 0)
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


def sigreturn(t: Task) -> int:
    """Restores the context saved by _setup_frame_locked (rt_sigreturn).

    Returns:
        The restored rax, which the dispatcher writes back unchanged.
    """
    regs = t.state.regs
    # The handler returned through the restorer, popping pretcode.
    frame = regs[P.RSP] - 8
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
    ss_sp, ss_flags, ss_size = _unpack_stack(buf)
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
    # Never restart a call from a restored context.
    regs[P.ORIG_RAX] = _MASK64
    if fp_addr:
        try:
            fp = t.mm.copy_in(fp_addr, len(t.state.fpstate))
        except SyscallError:
            with t.tg.signal_handlers.mu:
                _force_sigsegv_locked(t, 0)
            return rax
        t.state.fpstate[:] = fp
        t.state.fpstate_valid = True
        t.state.fpstate_dirty = True
    else:
        _init_fpstate(t)
    with t.tg.signal_handlers.mu:
        t.signal_mask = mask & ~S.UNBLOCKABLE_MASK
        recalc_interrupted_locked(t)
    # restore_altstack: ignore errors as the kernel does.
    if ss_flags & S.SS_DISABLE or ss_size >= S.MINSIGSTKSZ:
        if not _on_altstack(t, regs[P.RSP]):
            t.altstack = (ss_sp, ss_flags & ~S.SS_ONSTACK, ss_size)
    return rax


def _unpack_stack(buf: bytes) -> tuple[int, int, int]:
    ss_sp, ss_flags, _pad, ss_size = _STACK_T.unpack_from(buf, _UC_STACK_OFF)
    return ss_sp, ss_flags, ss_size


def is_restart_code(ret: int) -> bool:
    """Reports whether a handler's negative return is a restart code."""
    return -ret in _RESTART_CODES
