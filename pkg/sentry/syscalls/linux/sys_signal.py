"""Signal system calls: rt_sigaction(2), rt_sigprocmask(2), rt_sigreturn(2),
sigaltstack(2), rt_sigpending(2), rt_sigsuspend(2), pause(2),
rt_sigtimedwait(2), kill(2), tkill(2), tgkill(2), rt_sigqueueinfo(2),
rt_tgsigqueueinfo(2)."""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel.signals import SigAction, SignalInfo
from pkg.sentry.kernel.task_signals import (
    dequeue_signal_locked,
    do_sigaltstack,
    handler_ignores,
    pending_mask_locked,
    recalc_interrupted_locked,
    sas_ss_flags,
    send_signal,
    sigreturn,
)
from pkg.sentry.syscalls.linux.sys_time import read_timespec
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

# stack_t: ss_sp, ss_flags (int), padding, ss_size.
_STACK_T = struct.Struct("<QI4xQ")
_SIGINFO_HEAD = struct.Struct("<iii")
_CAP_KILL = 5

# The sa_flags bits Linux keeps (UAPI_SA_FLAGS): others read back as 0, so
# that applications can probe for flags the kernel does not know.
_UAPI_SA_FLAGS = (
    S.SA_NOCLDSTOP
    | S.SA_NOCLDWAIT
    | S.SA_SIGINFO
    | S.SA_ONSTACK
    | S.SA_RESTART
    | S.SA_NODEFER
    | S.SA_RESETHAND
    | S.SA_EXPOSE_TAGBITS
    | S.SA_RESTORER
)


def _valid_signo(signo: int) -> bool:
    return 1 <= signo <= S.NSIG


def sys_rt_sigaction(t: Task, args: Args) -> int:
    """rt_sigaction(2)."""
    signo, act_addr, old_addr, sigsetsize = s32(args[0]), args[1], args[2], args[3]
    if sigsetsize != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    if not _valid_signo(signo):
        raise SyscallError(errno.EINVAL)
    new = SigAction.unpack(t.copy_in(act_addr, 32)) if act_addr else None
    if new is not None and signo in (S.SIGKILL, S.SIGSTOP):
        raise SyscallError(errno.EINVAL)
    sh = t.tg.signal_handlers
    with sh.mu:
        old = sh.actions[signo]
        old_bytes = old.pack()
        if new is not None:
            new.mask &= ~S.UNBLOCKABLE_MASK
            new.flags &= _UAPI_SA_FLAGS
            sh.actions[signo] = new
            # An action that ignores the signal discards pending instances
            # (do_sigaction).
            if handler_ignores(new, signo):
                bit = S.sigmask(signo)
                t.tg.pending.discard(bit)
                for task in t.tg.tasks:
                    task.pending.discard(bit)
    if old_addr:
        t.copy_out(old_addr, old_bytes)
    return 0


def sys_rt_sigprocmask(t: Task, args: Args) -> int:
    """rt_sigprocmask(2)."""
    how, set_addr, old_addr, sigsetsize = s32(args[0]), args[1], args[2], args[3]
    if sigsetsize != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    new = t.mm.read_u64(set_addr) if set_addr else None
    if new is not None and how not in (S.SIG_BLOCK, S.SIG_UNBLOCK, S.SIG_SETMASK):
        raise SyscallError(errno.EINVAL)
    sh = t.tg.signal_handlers
    with sh.mu:
        old = t.signal_mask
        if new is not None:
            if how == S.SIG_BLOCK:
                mask = old | new
            elif how == S.SIG_UNBLOCK:
                mask = old & ~new
            else:
                mask = new
            t.signal_mask = mask & ~S.UNBLOCKABLE_MASK
            recalc_interrupted_locked(t)
    if old_addr:
        t.mm.write_u64(old_addr, old)
    return 0


def sys_rt_sigpending(t: Task, args: Args) -> int:
    """rt_sigpending(2): the blocked signals pending for the thread or its
    process. A set smaller than the kernel's is filled in part."""
    size = args[1]
    if size > S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    with t.tg.signal_handlers.mu:
        pending = pending_mask_locked(t) & t.signal_mask
    t.copy_out(args[0], pending.to_bytes(S.SIGSET_SIZE, "little")[:size])
    return 0


def sys_rt_sigsuspend(t: Task, args: Args) -> int:
    """rt_sigsuspend(2): waits for a signal with a temporary mask, which a
    handler's frame saves and rt_sigreturn restores."""
    if args[1] != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    mask = t.mm.read_u64(args[0])
    with t.tg.signal_handlers.mu:
        t.saved_mask = t.signal_mask
        t.signal_mask = mask & ~S.UNBLOCKABLE_MASK
        recalc_interrupted_locked(t)
    _wait_for_signal(t)
    raise SyscallError(errno.ERESTARTNOHAND)


def sys_pause(t: Task, args: Args) -> int:
    """pause(2)."""
    _wait_for_signal(t)
    raise SyscallError(errno.ERESTARTNOHAND)


def _wait_for_signal(t: Task) -> None:
    while True:
        try:
            t.block()
        except SyscallError as e:
            if e.errno == errno.ERESTARTSYS:
                return
            raise


def sys_rt_sigtimedwait(t: Task, args: Args) -> int:
    """rt_sigtimedwait(2): takes a pending signal of a set, waiting for one
    at most the timeout. Returns the signal number."""
    set_addr, info_addr, ts_addr, sigsetsize = args[0], args[1], args[2], args[3]
    if sigsetsize != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    wanted = t.mm.read_u64(set_addr) & ~S.UNBLOCKABLE_MASK
    timeout = read_timespec(t, ts_addr) if ts_addr else None
    blocked = ~wanted & S.FULL_MASK
    sh = t.tg.signal_handlers
    interrupted = False
    with sh.mu:
        info = dequeue_signal_locked(t, blocked)
        if info is None and timeout != 0:
            # Unblock the awaited signals while sleeping so that they wake
            # the task; real_blocked keeps them pending if ignored.
            t.real_blocked = t.signal_mask
            t.signal_mask &= blocked
    if info is None and timeout != 0:
        deadline = None
        if timeout is not None:
            deadline = time.monotonic() + timeout / T.NSEC_PER_SEC
        try:
            while True:
                t.block(deadline)
        except SyscallError as e:
            if e.errno == errno.ERESTARTSYS:
                interrupted = True
            elif e.errno != errno.ETIMEDOUT:
                raise
        finally:
            with sh.mu:
                t.signal_mask = t.real_blocked
                t.real_blocked = 0
                info = dequeue_signal_locked(t, blocked)
                recalc_interrupted_locked(t)
    if info is None:
        raise SyscallError(errno.EINTR if interrupted else errno.EAGAIN)
    if info_addr:
        t.copy_out(info_addr, info.pack())
    return info.signo


def sys_rt_sigreturn(t: Task, args: Args) -> int:
    """rt_sigreturn(2): returns the interrupted context's rax."""
    return sigreturn(t)


def sys_sigaltstack(t: Task, args: Args) -> int:
    """sigaltstack(2)."""
    ss_addr, old_addr = args[0], args[1]
    sp = t.state.regs[P.RSP]
    new = _STACK_T.unpack(t.copy_in(ss_addr, _STACK_T.size)) if ss_addr else None
    ss_sp, ss_flags, ss_size = t.altstack
    old = _STACK_T.pack(
        ss_sp, sas_ss_flags(t, sp) | (ss_flags & S.SS_FLAG_BITS), ss_size
    )
    if new is not None:
        do_sigaltstack(t, sp, *new)
    if old_addr:
        t.copy_out(old_addr, old)
    return 0


# Sending.


def _user_info(t: Task, signo: int, code: int) -> SignalInfo:
    return SignalInfo(signo=signo, code=code, pid=t.tg.tgid, uid=t.creds.ruid)


def _check_kill_permission(t: Task, target: ThreadGroup, signo: int) -> None:
    """check_kill_permission: the signal must be valid and the sender the
    target's owner, privileged (CAP_KILL), in the same process, or sending
    SIGCONT within its session."""
    if not _valid_signo(signo) and signo != 0:
        raise SyscallError(errno.EINVAL)
    if target is t.tg:
        return
    leader = target.leader
    c = t.creds
    if leader is None or c.has_capability(_CAP_KILL):
        return
    tc = leader.creds
    if c.euid in (tc.suid, tc.ruid) or c.ruid in (tc.suid, tc.ruid):
        return
    if signo == S.SIGCONT and target.sid == t.tg.sid:
        return
    raise SyscallError(errno.EPERM)


def _group_send(t: Task, tg: ThreadGroup, signo: int, info: SignalInfo) -> None:
    """group_send_sig_info: permission, then the signal (0 only checks)."""
    _check_kill_permission(t, tg, signo)
    if signo:
        send_signal(tg, None, info)


def sys_kill(t: Task, args: Args) -> int:
    """kill(2)."""
    pid, signo = s32(args[0]), s32(args[1])
    tasks = t.kernel.tasks
    if pid > 0:
        with tasks.mu:
            tg = tasks.thread_groups.get(pid)
        if tg is None:
            raise SyscallError(errno.ESRCH)
        _group_send(t, tg, signo, _user_info(t, signo, S.SI_USER))
        return 0
    if pid == -(1 << 31):
        raise SyscallError(errno.ESRCH)
    with tasks.mu:
        groups = list(tasks.thread_groups.values())
    if pid == -1:
        # Every process but init and the caller; EPERM failures are
        # ignored (kill_something_info).
        targets = [g for g in groups if g.tgid > 1 and g is not t.tg]
        if not targets:
            raise SyscallError(errno.ESRCH)
        result = 0
        for tg in targets:
            try:
                _group_send(t, tg, signo, _user_info(t, signo, S.SI_USER))
            except SyscallError as e:
                if e.errno != errno.EPERM:
                    result = e.errno
        if result:
            raise SyscallError(result)
        return 0
    pgid = t.tg.pgid if pid == 0 else -pid
    targets = [g for g in groups if g.pgid == pgid and not g.zombie]
    if not targets:
        raise SyscallError(errno.ESRCH)
    # Success if any member got it, else the last error (__kill_pgrp_info).
    error = 0
    success = False
    for tg in targets:
        try:
            _group_send(t, tg, signo, _user_info(t, signo, S.SI_USER))
            success = True
        except SyscallError as e:
            error = e.errno
    if not success:
        raise SyscallError(error)
    return 0


def _send_specific(t: Task, tgid: int, tid: int, signo: int, info: SignalInfo) -> int:
    """do_send_specific: a signal to one thread, of process tgid if > 0."""
    target = t.kernel.tasks.tasks.get(tid)
    if target is None or (tgid > 0 and target.tg.tgid != tgid):
        raise SyscallError(errno.ESRCH)
    _check_kill_permission(t, target.tg, signo)
    if signo:
        send_signal(target.tg, target, info)
    return 0


def sys_tkill(t: Task, args: Args) -> int:
    """tkill(2)."""
    tid, signo = s32(args[0]), s32(args[1])
    if tid <= 0:
        raise SyscallError(errno.EINVAL)
    return _send_specific(t, 0, tid, signo, _user_info(t, signo, S.SI_TKILL))


def sys_tgkill(t: Task, args: Args) -> int:
    """tgkill(2)."""
    tgid, tid, signo = s32(args[0]), s32(args[1]), s32(args[2])
    if tid <= 0 or tgid <= 0:
        raise SyscallError(errno.EINVAL)
    return _send_specific(t, tgid, tid, signo, _user_info(t, signo, S.SI_TKILL))


def _queued_info(t: Task, signo: int, addr: int) -> SignalInfo:
    """Reads an application's siginfo for rt_sigqueueinfo: kept verbatim
    but for si_signo, which is the signal argument."""
    raw = bytearray(t.copy_in(addr, S.SIGINFO_SIZE))
    _si_signo, err, code = _SIGINFO_HEAD.unpack_from(raw, 0)
    struct.pack_into("<i", raw, 0, signo)
    return SignalInfo(signo=signo, code=code, errno=err, raw=bytes(raw))


def _forges_kernel_code(info: SignalInfo) -> bool:
    # Only the kernel sends si_code >= 0 (SI_USER, kernel codes), and only
    # tkill sends SI_TKILL: nobody may pretend to, but to itself.
    return info.code >= 0 or info.code == S.SI_TKILL


def sys_rt_sigqueueinfo(t: Task, args: Args) -> int:
    """rt_sigqueueinfo(2)."""
    pid, signo = s32(args[0]), s32(args[1])
    info = _queued_info(t, signo, args[2])
    if _forges_kernel_code(info) and pid != t.tid:
        raise SyscallError(errno.EPERM)
    with t.kernel.tasks.mu:
        tg = t.kernel.tasks.thread_groups.get(pid)
    if tg is None:
        raise SyscallError(errno.ESRCH)
    _group_send(t, tg, signo, info)
    return 0


def sys_rt_tgsigqueueinfo(t: Task, args: Args) -> int:
    """rt_tgsigqueueinfo(2)."""
    tgid, tid, signo = s32(args[0]), s32(args[1]), s32(args[2])
    info = _queued_info(t, signo, args[3])
    if tid <= 0 or tgid <= 0:
        raise SyscallError(errno.EINVAL)
    if _forges_kernel_code(info) and tid != t.tid:
        raise SyscallError(errno.EPERM)
    return _send_specific(t, tgid, tid, signo, info)


ENTRIES = [
    full(N.SYS_rt_sigaction, "rt_sigaction", sys_rt_sigaction),
    full(N.SYS_rt_sigprocmask, "rt_sigprocmask", sys_rt_sigprocmask),
    full(N.SYS_rt_sigreturn, "rt_sigreturn", sys_rt_sigreturn),
    full(N.SYS_pause, "pause", sys_pause),
    full(N.SYS_kill, "kill", sys_kill),
    full(N.SYS_rt_sigpending, "rt_sigpending", sys_rt_sigpending),
    full(N.SYS_rt_sigtimedwait, "rt_sigtimedwait", sys_rt_sigtimedwait),
    full(N.SYS_rt_sigqueueinfo, "rt_sigqueueinfo", sys_rt_sigqueueinfo),
    full(N.SYS_rt_sigsuspend, "rt_sigsuspend", sys_rt_sigsuspend),
    full(N.SYS_sigaltstack, "sigaltstack", sys_sigaltstack),
    full(N.SYS_tkill, "tkill", sys_tkill),
    full(N.SYS_tgkill, "tgkill", sys_tgkill),
    full(N.SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo", sys_rt_tgsigqueueinfo),
]
