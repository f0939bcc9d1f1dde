"""Signal system calls: rt_sigaction(2), rt_sigprocmask(2), rt_sigreturn(2),
sigaltstack(2), rt_sigpending(2), kill(2), tkill(2), tgkill(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel.signals import SigAction, SignalInfo
from pkg.sentry.kernel.task_signals import (
    recalc_interrupted_locked,
    send_to_task,
    send_to_thread_group,
    sigreturn,
)
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

_STACK_T = struct.Struct("<QiiQ")
# ss_flags read as unsigned so that SS_AUTODISARM (bit 31) is a plain bit.
_STACK_T_IN = struct.Struct("<QIiQ")


def _check_signo(signo: int) -> None:
    if not 1 <= signo <= S.NSIG:
        raise SyscallError(errno.EINVAL)


def sys_rt_sigaction(t: Task, args: Args) -> int:
    """rt_sigaction(2)."""
    signo, act_addr, old_addr, sigsetsize = s32(args[0]), args[1], args[2], args[3]
    if sigsetsize != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    _check_signo(signo)
    new = SigAction.unpack(t.copy_in(act_addr, 32)) if act_addr else None
    if new is not None and signo in (S.SIGKILL, S.SIGSTOP):
        raise SyscallError(errno.EINVAL)
    sh = t.tg.signal_handlers
    with sh.mu:
        old = sh.actions[signo]
        old_bytes = old.pack()
        if new is not None:
            new.mask &= ~S.UNBLOCKABLE_MASK
            sh.actions[signo] = new
            # Setting an ignoring action discards pending instances
            # (do_sigaction).
            if sh.is_ignored(signo):
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
    """rt_sigpending(2)."""
    if args[1] != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    with t.tg.signal_handlers.mu:
        pending = (t.pending.mask | t.tg.pending.mask) & t.signal_mask
    t.mm.write_u64(args[0], pending)
    return 0


def sys_rt_sigreturn(t: Task, args: Args) -> int:
    """rt_sigreturn(2): returns the interrupted context's rax."""
    return sigreturn(t)


def sys_sigaltstack(t: Task, args: Args) -> int:
    """sigaltstack(2)."""
    ss_addr, old_addr = args[0], args[1]
    ss_sp, ss_flags, ss_size = t.altstack
    on_stack = ss_size != 0 and ss_sp < t.state.regs[P.RSP] <= ss_sp + ss_size
    if old_addr:
        flags = S.SS_ONSTACK if on_stack else ss_flags
        t.copy_out(old_addr, _STACK_T_IN.pack(ss_sp, flags, 0, ss_size))
    if ss_addr:
        sp, flags, _pad, size = _STACK_T_IN.unpack(t.copy_in(ss_addr, _STACK_T.size))
        if on_stack:
            raise SyscallError(errno.EPERM)
        mode = flags & ~S.SS_AUTODISARM
        if mode not in (0, S.SS_DISABLE, S.SS_ONSTACK):
            raise SyscallError(errno.EINVAL)
        if mode == S.SS_DISABLE:
            t.altstack = (0, S.SS_DISABLE, 0)
        else:
            if size < S.MINSIGSTKSZ:
                raise SyscallError(errno.ENOMEM)
            t.altstack = (sp, flags & S.SS_AUTODISARM, size)
    return 0


def _kill_info(t: Task, signo: int, code: int = S.SI_USER) -> SignalInfo:
    return SignalInfo(signo=signo, code=code, pid=t.tg.tgid, uid=t.creds.ruid)


def _may_signal(t: Task, target: ThreadGroup, signo: int) -> None:
    # kill_ok_by_cred: root, or matching real/effective ids.
    c = t.creds
    leader = target.leader
    if leader is None or c.has_capability(5):  # CAP_KILL
        return
    tc = leader.creds
    if c.euid in (tc.ruid, tc.suid) or c.ruid in (tc.ruid, tc.suid):
        return
    raise SyscallError(errno.EPERM)


def sys_kill(t: Task, args: Args) -> int:
    """kill(2)."""
    pid, signo = s32(args[0]), s32(args[1])
    if signo and not 1 <= signo <= S.NSIG:
        raise SyscallError(errno.EINVAL)
    tasks = t.kernel.tasks
    if pid > 0:
        with tasks.mu:
            tg = tasks.thread_groups.get(pid)
        if tg is None or (tg.zombie and not tg.tasks):
            if tg is None:
                raise SyscallError(errno.ESRCH)
            return 0
        _may_signal(t, tg, signo)
        if signo:
            send_to_thread_group(tg, _kill_info(t, signo))
        return 0
    # Process groups and "everyone".
    with tasks.mu:
        groups = list(tasks.thread_groups.values())
    if pid == 0:
        targets = [g for g in groups if g.pgid == t.tg.pgid]
    elif pid == -1:
        targets = [g for g in groups if g is not t.tg and g is not t.kernel.init_tg]
    else:
        targets = [g for g in groups if g.pgid == -pid]
    if not targets:
        raise SyscallError(errno.ESRCH)
    sent = False
    for tg in targets:
        try:
            _may_signal(t, tg, signo)
        except SyscallError:
            continue
        sent = True
        if signo:
            send_to_thread_group(tg, _kill_info(t, signo))
    if not sent:
        raise SyscallError(errno.EPERM)
    return 0


def _signal_thread(t: Task, tgid: int, tid: int, signo: int) -> int:
    if tid <= 0 or (tgid is not None and tgid <= 0):
        raise SyscallError(errno.EINVAL)
    if signo and not 1 <= signo <= S.NSIG:
        raise SyscallError(errno.EINVAL)
    target = t.kernel.tasks.tasks.get(tid)
    if target is None or (tgid is not None and target.tg.tgid != tgid):
        raise SyscallError(errno.ESRCH)
    _may_signal(t, target.tg, signo)
    if signo:
        send_to_task(target, _kill_info(t, signo, S.SI_TKILL))
    return 0


def sys_tkill(t: Task, args: Args) -> int:
    """tkill(2)."""
    return _signal_thread(t, None, s32(args[0]), s32(args[1]))


def sys_tgkill(t: Task, args: Args) -> int:
    """tgkill(2)."""
    return _signal_thread(t, s32(args[0]), s32(args[1]), s32(args[2]))


ENTRIES = [
    full(N.SYS_rt_sigaction, "rt_sigaction", sys_rt_sigaction),
    full(N.SYS_rt_sigprocmask, "rt_sigprocmask", sys_rt_sigprocmask),
    full(N.SYS_rt_sigreturn, "rt_sigreturn", sys_rt_sigreturn),
    full(N.SYS_kill, "kill", sys_kill),
    full(N.SYS_rt_sigpending, "rt_sigpending", sys_rt_sigpending),
    full(N.SYS_sigaltstack, "sigaltstack", sys_sigaltstack),
    full(N.SYS_tkill, "tkill", sys_tkill),
    full(N.SYS_tgkill, "tgkill", sys_tgkill),
]
