"""ptrace(2) requests between sandboxed tasks (kernel/ptrace.c,
arch/x86/kernel/ptrace.c).

The tracer link and the stops live in pkg/sentry/kernel/ptrace.py; this
file decodes requests, checks that the caller is the tracer of a stopped
tracee (ptrace_check_attach), and reads or writes the tracee's memory,
registers and FPU state, which sit in its platform State while it is
stopped. Register writes are checked as putreg does.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import prctl as PR
from pkg.abi.linux import ptrace as PT
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel import ptrace
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_task, send_to_thread_group
from pkg.sentry.syscalls.linux.sys_thread import may_access
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.ptrace import TraceeState
    from pkg.sentry.kernel.task import Task

_MASK64 = (1 << 64) - 1
_U64 = struct.Struct("<Q")
# The highest user address plus one (TASK_SIZE_MAX): fs_base and gs_base
# must lie below it.
_TASK_SIZE_MAX = 0x7FFFFFFFF000
# eflags bits a tracer may change (FLAG_MASK of arch/x86/kernel/ptrace.c).
_FLAG_MASK = 0x54DD5
# AUDIT_ARCH_X86_64, for PTRACE_GET_SYSCALL_INFO.
_AUDIT_ARCH_X86_64 = 0xC000003E
# Offsets in the XSAVE area: MXCSR, the software-reserved bytes (XCR0 for
# ptrace), XSTATE_BV and XCOMP_BV.
_MXCSR_OFF = 24
_SW_RESERVED_OFF = 464
_FXSAVE_SIZE = 512
_XSTATE_BV_OFF = 512
_XCOMP_BV_OFF = 520

_SEGMENT_REGS = frozenset({P.CS, P.SS, P.DS, P.ES, P.FS, P.GS})


def _find(t: Task, pid: int) -> Task:
    target = t.kernel.tasks.find_task(pid) if pid > 0 else None
    if target is None:
        raise SyscallError(errno.ESRCH)
    return target


def _check_options(options: int) -> None:
    """Rejects unknown PTRACE_O_* bits, and PTRACE_O_SUSPEND_SECCOMP as a
    kernel without CONFIG_CHECKPOINT_RESTORE does.

    Raises:
        SyscallError: EINVAL.
    """
    # TODO(#5): PTRACE_O_SUSPEND_SECCOMP (checkpoint/restore) is not offered.
    if options & ~PT.PTRACE_O_MASK or options & PT.PTRACE_O_SUSPEND_SECCOMP:
        raise SyscallError(errno.EINVAL)


def _traced_by(t: Task, target: Task, any_state: bool) -> TraceeState:
    """Returns target's tracee state if t traces it and, unless any_state,
    it is in a ptrace-stop (ptrace_check_attach).

    Raises:
        SyscallError: ESRCH otherwise.
    """
    ps = target.ptrace
    if ps is None or ps.tracer is not t:
        raise SyscallError(errno.ESRCH)
    if not any_state:
        stop = ps.stop
        if stop is None or stop.done:
            raise SyscallError(errno.ESRCH)
    return ps


# Attaching.


def _traceme(t: Task) -> int:
    ts = t.kernel.tasks
    with ts.mu:
        tracer = t.tg.real_parent
        if t.ptrace is not None or tracer is None or tracer.exiting:
            raise SyscallError(errno.EPERM)
        if not ptrace.yama_may_traceme(tracer):
            raise SyscallError(errno.EPERM)
        ptrace.link_locked(tracer, t, seized=False)
    return 0


def _attach(t: Task, target: Task, seize: bool, addr: int, data: int) -> int:
    if seize:
        if addr != 0:
            raise SyscallError(errno.EIO)
        _check_options(data)
    if target.tg is t.tg or not may_access(t, target.tg):
        raise SyscallError(errno.EPERM)
    ts = t.kernel.tasks
    with ts.mu:
        if target.ptrace is not None or target.exiting or target.tg.exiting:
            raise SyscallError(errno.EPERM)
        if not ptrace.yama_may_attach_locked(t, target.tg):
            raise SyscallError(errno.EPERM)
        ptrace.link_locked(t, target, seize, data if seize else 0)
    if not seize:
        send_to_task(
            target,
            SignalInfo(signo=S.SIGSTOP, code=S.SI_USER, pid=t.pid, uid=t.creds.ruid),
        )
    # A tracee already in a group stop reports it to its new tracer
    # (JOBCTL_TRAP_STOP): wake it in task_stop.wait_while_stopped.
    target.interrupt()
    return 0


# Resuming.


def _resume(target: Task, ps: TraceeState, mode: int, signo: int) -> int:
    if not 0 <= signo <= S.SIGRTMAX:
        raise SyscallError(errno.EIO)
    with target.tg.signal_handlers.mu:
        stop = ps.stop
        ps.resume = mode
        ps.resume_signo = signo
        ps.listening = False
        ps.stop = None
        if stop is not None:
            stop.done = True
    target.wake()
    return 0


def _listen(target: Task, ps: TraceeState) -> int:
    if not ps.seized:
        raise SyscallError(errno.EIO)
    with target.tg.signal_handlers.mu:
        stop = ps.stop
        if stop is None or stop.status >> 16 != PT.PTRACE_EVENT_STOP:
            raise SyscallError(errno.EIO)
        ps.listening = True
        ps.resume = ptrace.RESUME_CONT
        ps.stop = None
        stop.done = True
    target.wake()
    return 0


def _interrupt(target: Task, ps: TraceeState) -> int:
    if not ps.seized:
        raise SyscallError(errno.EIO)
    with target.tg.signal_handlers.mu:
        if ps.stop is not None and not ps.stop.done:
            # Already in a ptrace-stop: nothing to do (ptrace_trap_notify).
            return 0
        ps.interrupt = True
    target.interrupt()
    return 0


# Memory.


def _peek(t: Task, target: Task, addr: int, data: int) -> int:
    try:
        word = target.mm.copy_in(addr, 8)
    except SyscallError:
        raise SyscallError(errno.EIO) from None
    t.copy_out(data, word)
    return 0


def _poke(target: Task, addr: int, data: int) -> int:
    # FOLL_FORCE: breakpoints go into read-only private text.
    try:
        target.mm.copy_out_force(addr, _U64.pack(data & _MASK64))
    except SyscallError:
        raise SyscallError(errno.EIO) from None
    return 0


# Registers.


def _put_reg(target: Task, idx: int, value: int) -> None:
    """Writes one register of a stopped tracee as putreg does.

    Raises:
        SyscallError: EIO for a bad segment selector or base.
    """
    regs = target.state.regs
    value &= _MASK64
    if idx in _SEGMENT_REGS:
        value &= 0xFFFF
        if idx in (P.CS, P.SS):
            if value & 3 != 3:
                raise SyscallError(errno.EIO)
        elif value and value & 3 != 3:
            raise SyscallError(errno.EIO)
    elif idx in (P.FS_BASE, P.GS_BASE):
        if value >= _TASK_SIZE_MAX:
            raise SyscallError(errno.EIO)
    elif idx == P.EFLAGS:
        value = (regs[P.EFLAGS] & ~_FLAG_MASK) | (value & _FLAG_MASK)
    regs[idx] = value


def _set_regs(target: Task, raw: bytes) -> None:
    words = struct.unpack(f"<{P.NUM_REGS}Q", raw)
    # Check everything before changing anything.
    scratch = bytearray(target.state.buf[: P.REGS_SIZE])
    saved = bytes(scratch)
    try:
        for i, v in enumerate(words):
            _put_reg(target, i, v)
    except SyscallError:
        target.state.buf[: P.REGS_SIZE] = saved
        raise


def _peek_user(t: Task, target: Task, addr: int, data: int) -> int:
    if addr & 7 or addr >= PT.USER_SIZE:
        raise SyscallError(errno.EIO)
    value = 0
    if addr < PT.USER_REGS_SIZE:
        value = target.state.regs[addr // 8]
    # The debug registers (u_debugreg) and everything else read as 0.
    t.copy_out(data, _U64.pack(value))
    return 0


def _poke_user(target: Task, addr: int, data: int) -> int:
    if addr & 7 or addr >= PT.USER_SIZE:
        raise SyscallError(errno.EIO)
    if addr < PT.USER_REGS_SIZE:
        _put_reg(target, addr // 8, data)
        return 0
    if addr >= PT.USER_DEBUGREG_OFFSET and data == 0:
        return 0
    # TODO(#5): hardware breakpoints and watchpoints (u_debugreg) are not
    # emulated; only clearing them succeeds.
    raise SyscallError(errno.EIO)


def _fpstate(target: Task) -> memoryview:
    state = target.state
    # ptrace_stop pulled it before the tracee stopped.
    return state.fpstate


def _xcr0(size: int) -> int:
    """The XSAVE features of an XSAVE area of this standard-format size
    (x87, SSE, AVX, then the AVX-512 and PKRU components)."""
    xcr0 = 0x3
    if size >= 832:
        xcr0 |= 0x4
    if size >= 2688:
        xcr0 |= 0xE0
    if size >= 2696:
        xcr0 |= 0x200
    return xcr0


def _get_xstate(target: Task) -> bytes:
    fp = bytearray(_fpstate(target))
    # The software-reserved bytes hold XCR0 for debuggers
    # (xstate_fx_sw_bytes), not a signal frame's magic.
    fp[_SW_RESERVED_OFF:_FXSAVE_SIZE] = bytes(_FXSAVE_SIZE - _SW_RESERVED_OFF)
    _U64.pack_into(fp, _SW_RESERVED_OFF, _xcr0(len(fp)))
    return bytes(fp)


def _set_fxsave(target: Task, raw: bytes) -> None:
    fp = _fpstate(target)
    legacy = bytearray(raw[:_FXSAVE_SIZE])
    # Reserved MXCSR bits would make the restore fault.
    (mxcsr,) = struct.unpack_from("<I", legacy, _MXCSR_OFF)
    struct.pack_into("<I", legacy, _MXCSR_OFF, mxcsr & 0xFFFF)
    fp[:_SW_RESERVED_OFF] = legacy[:_SW_RESERVED_OFF]
    if len(fp) > _FXSAVE_SIZE:
        (bv,) = _U64.unpack_from(fp, _XSTATE_BV_OFF)
        _U64.pack_into(fp, _XSTATE_BV_OFF, bv | 0x3)
    target.state.fpstate_valid = True
    target.state.fpstate_dirty = True


def _set_xstate(target: Task, raw: bytes) -> None:
    fp = _fpstate(target)
    if len(raw) < len(fp):
        raise SyscallError(errno.EFAULT)
    (bv,) = _U64.unpack_from(raw, _XSTATE_BV_OFF)
    (comp,) = _U64.unpack_from(raw, _XCOMP_BV_OFF)
    if bv & ~_xcr0(len(fp)) or comp:
        raise SyscallError(errno.EINVAL)
    _set_fxsave(target, raw)
    fp[_FXSAVE_SIZE:] = raw[_FXSAVE_SIZE : len(fp)]


def _regset(t: Task, target: Task, note: int, iov_addr: int, write: bool) -> int:
    base, length = struct.unpack("<QQ", t.copy_in(iov_addr, 16))
    if note == PT.NT_PRSTATUS:
        size = P.REGS_SIZE
    elif note == PT.NT_PRFPREG:
        size = _FXSAVE_SIZE
    elif note == PT.NT_X86_XSTATE:
        size = len(_fpstate(target))
    else:
        raise SyscallError(errno.EINVAL)
    n = min(length, size)
    if write:
        raw = t.copy_in(base, n)
        if note == PT.NT_PRSTATUS:
            # A short write changes the leading registers only.
            full = bytearray(target.state.buf[: P.REGS_SIZE])
            full[:n] = raw
            _set_regs(target, bytes(full))
        elif note == PT.NT_PRFPREG:
            full = bytearray(_fpstate(target)[:_FXSAVE_SIZE])
            full[:n] = raw
            _set_fxsave(target, bytes(full))
        else:
            _set_xstate(target, raw)
    else:
        if note == PT.NT_PRSTATUS:
            out = bytes(target.state.buf[: P.REGS_SIZE])
        elif note == PT.NT_PRFPREG:
            out = bytes(_fpstate(target)[:_FXSAVE_SIZE])
        else:
            out = _get_xstate(target)
        t.copy_out(base, out[:n])
    t.copy_out(iov_addr + 8, _U64.pack(n))
    return 0


def _syscall_info(t: Task, target: Task, ps: TraceeState, size: int, addr: int) -> int:
    regs = target.state.regs
    op = ps.syscall_op
    head = struct.pack("<B3xIQQ", op, _AUDIT_ARCH_X86_64, regs[P.RIP], regs[P.RSP])
    if op == PT.PTRACE_SYSCALL_INFO_ENTRY:
        body = struct.pack(
            "<7Q",
            regs[P.ORIG_RAX],
            regs[P.RDI],
            regs[P.RSI],
            regs[P.RDX],
            regs[P.R10],
            regs[P.R8],
            regs[P.R9],
        )
    elif op == PT.PTRACE_SYSCALL_INFO_EXIT:
        rax = regs[P.RAX]
        rval = rax - (1 << 64) if rax >> 63 else rax
        body = struct.pack("<qB", rval, 1 if -4095 <= rval < 0 else 0)
    else:
        body = b""
    out = head + body
    t.copy_out(addr, out[: min(size, len(out))])
    return len(out)


def _arch_prctl(t: Task, target: Task, code: int, addr: int) -> int:
    """arch_prctl(2) on the tracee's behalf: the fs and gs bases."""
    regs = target.state.regs
    if code in (PR.ARCH_SET_FS, PR.ARCH_SET_GS):
        if addr >= _TASK_SIZE_MAX:
            raise SyscallError(errno.EPERM)
        regs[P.FS_BASE if code == PR.ARCH_SET_FS else P.GS_BASE] = addr
        return 0
    if code in (PR.ARCH_GET_FS, PR.ARCH_GET_GS):
        base = regs[P.FS_BASE if code == PR.ARCH_GET_FS else P.GS_BASE]
        t.copy_out(addr, _U64.pack(base))
        return 0
    raise SyscallError(errno.EINVAL)


# The system call.


def sys_ptrace(t: Task, args: Args) -> int:
    """ptrace(2)."""
    req = args[0] & _MASK64
    pid = s32(args[1])
    addr, data = args[2], args[3]

    if req == PT.PTRACE_TRACEME:
        return _traceme(t)
    target = _find(t, pid)
    if req in (PT.PTRACE_ATTACH, PT.PTRACE_SEIZE):
        return _attach(t, target, req == PT.PTRACE_SEIZE, addr, data)
    any_state = req in (PT.PTRACE_KILL, PT.PTRACE_INTERRUPT)
    ps = _traced_by(t, target, any_state)

    if req == PT.PTRACE_KILL:
        send_to_thread_group(target.tg, SignalInfo(signo=S.SIGKILL, code=S.SI_KERNEL))
        return 0
    if req == PT.PTRACE_INTERRUPT:
        return _interrupt(target, ps)
    if req == PT.PTRACE_LISTEN:
        return _listen(target, ps)
    if req == PT.PTRACE_DETACH:
        if not 0 <= data <= S.SIGRTMAX:
            raise SyscallError(errno.EIO)
        with t.kernel.tasks.mu:
            if target.ptrace is ps:
                ptrace.detach_locked(target, data)
        return 0
    if req == PT.PTRACE_CONT:
        return _resume(target, ps, ptrace.RESUME_CONT, data)
    if req == PT.PTRACE_SYSCALL:
        return _resume(target, ps, ptrace.RESUME_SYSCALL, data)
    if req == PT.PTRACE_SINGLESTEP:
        return _resume(target, ps, ptrace.RESUME_STEP, data)
    if req == PT.PTRACE_SYSEMU:
        return _resume(target, ps, ptrace.RESUME_SYSEMU, data)
    if req == PT.PTRACE_SYSEMU_SINGLESTEP:
        return _resume(target, ps, ptrace.RESUME_SYSEMU_STEP, data)
    if req == PT.PTRACE_ARCH_PRCTL:
        return _arch_prctl(t, target, s32(data), addr)
    if req in (PT.PTRACE_PEEKTEXT, PT.PTRACE_PEEKDATA):
        return _peek(t, target, addr, data)
    if req in (PT.PTRACE_POKETEXT, PT.PTRACE_POKEDATA):
        return _poke(target, addr, data)
    if req == PT.PTRACE_PEEKUSR:
        return _peek_user(t, target, addr, data)
    if req == PT.PTRACE_POKEUSR:
        return _poke_user(target, addr, data)
    if req == PT.PTRACE_GETREGS:
        t.copy_out(data, bytes(target.state.buf[: P.REGS_SIZE]))
        return 0
    if req == PT.PTRACE_SETREGS:
        _set_regs(target, t.copy_in(data, P.REGS_SIZE))
        return 0
    if req == PT.PTRACE_GETFPREGS:
        t.copy_out(data, bytes(_fpstate(target)[:_FXSAVE_SIZE]))
        return 0
    if req == PT.PTRACE_SETFPREGS:
        _set_fxsave(target, t.copy_in(data, _FXSAVE_SIZE))
        return 0
    if req in (PT.PTRACE_GETREGSET, PT.PTRACE_SETREGSET):
        return _regset(t, target, addr, data, req == PT.PTRACE_SETREGSET)
    if req == PT.PTRACE_SETOPTIONS:
        _check_options(data)
        ps.options = data
        return 0
    if req == PT.PTRACE_GETEVENTMSG:
        t.copy_out(data, _U64.pack(ps.event_msg & _MASK64))
        return 0
    if req == PT.PTRACE_GETSIGINFO:
        if ps.siginfo is None:
            raise SyscallError(errno.EINVAL)
        t.copy_out(data, ps.siginfo.pack())
        return 0
    if req == PT.PTRACE_SETSIGINFO:
        raw = t.copy_in(data, S.SIGINFO_SIZE)
        ps.siginfo = SignalInfo.from_host(raw)
        return 0
    if req in (PT.PTRACE_GETSIGMASK, PT.PTRACE_SETSIGMASK):
        if addr != 8:
            raise SyscallError(errno.EINVAL)
        if req == PT.PTRACE_GETSIGMASK:
            t.copy_out(data, _U64.pack(target.signal_mask))
        else:
            (mask,) = _U64.unpack(t.copy_in(data, 8))
            with target.tg.signal_handlers.mu:
                target.signal_mask = mask & ~S.UNBLOCKABLE_MASK
        return 0
    if req == PT.PTRACE_GET_SYSCALL_INFO:
        return _syscall_info(t, target, ps, addr, data)
    # TODO(#5): PTRACE_SINGLEBLOCK, PTRACE_GET/SET_THREAD_AREA (32-bit
    # only), PTRACE_PEEKSIGINFO and the seccomp requests are not
    # implemented.
    raise SyscallError(errno.EIO)


ENTRIES = [
    partial(
        N.SYS_ptrace,
        "ptrace",
        sys_ptrace,
        "between sandboxed tasks; no PTRACE_SINGLEBLOCK, PTRACE_PEEKSIGINFO, "
        "seccomp requests or hardware debug registers; Yama's ptrace_scope "
        "(1 by default) applies to ptrace only",
    ),
]
