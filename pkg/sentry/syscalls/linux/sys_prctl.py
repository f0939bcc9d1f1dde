"""arch_prctl(2) and prctl(2).

prctl options are dispatched through a table built at import, one handler
per option; an option without a handler fails with EINVAL as Linux fails
unknown options. The capability options follow security/commoncap.c.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import prctl as PR
from pkg.abi.linux import sched as SC
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel import credentials as C
from pkg.sentry.syscalls.linux.sys_seccomp import (
    prctl_get_seccomp,
    prctl_set_seccomp,
)
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_TASK_COMM_LEN = 16
# TASK_SIZE_MAX: FS and GS bases must be canonical user addresses.
_TASK_SIZE_MAX = 0x7FFFFFFFF000


def sys_arch_prctl(t: Task, args: Args) -> int:
    """arch_prctl(2)."""
    code, addr = s32(args[0]), args[1]
    regs = t.state.regs
    if code == PR.ARCH_SET_FS:
        if addr >= _TASK_SIZE_MAX:
            raise SyscallError(errno.EPERM)
        regs[P.FS_BASE] = addr
        return 0
    if code == PR.ARCH_SET_GS:
        if addr >= _TASK_SIZE_MAX:
            raise SyscallError(errno.EPERM)
        regs[P.GS_BASE] = addr
        return 0
    if code == PR.ARCH_GET_FS:
        t.mm.write_u64(addr, regs[P.FS_BASE])
        return 0
    if code == PR.ARCH_GET_GS:
        t.mm.write_u64(addr, regs[P.GS_BASE])
        return 0
    if code == PR.ARCH_GET_CPUID:
        # CPUID is not faulting: applications execute it directly.
        return 1
    if code == PR.ARCH_SET_CPUID:
        # TODO(#4): CPUID faulting for applications is not offered.
        raise SyscallError(errno.ENODEV)
    raise SyscallError(errno.EINVAL)


# prctl option handlers: (task, arg2, arg3, arg4, arg5) -> result.
PrctlHandler = Callable[["Task", int, int, int, int], int]


def _set_pdeathsig(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 > S.SIGRTMAX:
        raise SyscallError(errno.EINVAL)
    t.pdeath_signal = arg2
    return 0


def _set_ptracer(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """PR_SET_PTRACER (Yama): names the process that may attach to this one
    under ptrace_scope 1 besides its ancestors; 0 clears it."""
    ts = t.kernel.tasks
    tracer = None
    if arg2 not in (0, PR.PR_SET_PTRACER_ANY):
        tracer = ts.find_task(arg2) if 0 < arg2 < 1 << 31 else None
        if tracer is None:
            raise SyscallError(errno.EINVAL)
    with ts.mu:
        t.tg.ptracer_any = arg2 == PR.PR_SET_PTRACER_ANY
        t.tg.ptracer_exception = tracer.tg if tracer is not None else None
    return 0


def _get_pdeathsig(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    t.mm.write_i32(arg2, t.pdeath_signal)
    return 0


def _get_dumpable(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return t.tg.dumpable


def _set_dumpable(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 not in (C.SUID_DUMP_DISABLE, C.SUID_DUMP_USER):
        raise SyscallError(errno.EINVAL)
    t.tg.dumpable = arg2
    return 0


def _get_keepcaps(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return int(t.creds.keep_caps)


def _set_keepcaps(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 > 1:
        raise SyscallError(errno.EINVAL)
    if t.creds.securebits & (1 << C.SECURE_KEEP_CAPS_LOCKED):
        raise SyscallError(errno.EPERM)
    C.commit_creds(t, t.creds.with_changes(keep_caps=bool(arg2)))
    return 0


def _get_timing(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return PR.PR_TIMING_STATISTICAL


def _set_timing(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 != PR.PR_TIMING_STATISTICAL:
        raise SyscallError(errno.EINVAL)
    return 0


def _get_name(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    name = t.name[: _TASK_COMM_LEN - 1]
    t.copy_out(arg2, name + bytes(_TASK_COMM_LEN - len(name)))
    return 0


def _set_name(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    raw = t.mm.copy_in_partial(arg2, _TASK_COMM_LEN)
    if not raw:
        raise SyscallError(errno.EFAULT)
    name = raw.split(b"\0", 1)[0][: _TASK_COMM_LEN - 1]
    t.name = bytes(name)
    return 0


def _get_seccomp(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return prctl_get_seccomp(t)


def _set_seccomp(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return prctl_set_seccomp(t, arg2, arg3)


def _capbset_read(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 > C.CAP_LAST_CAP:
        raise SyscallError(errno.EINVAL)
    return t.creds.bounding >> arg2 & 1


def _capbset_drop(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    c = t.creds
    if not c.has_capability(C.CAP_SETPCAP):
        raise SyscallError(errno.EPERM)
    if arg2 > C.CAP_LAST_CAP:
        raise SyscallError(errno.EINVAL)
    C.commit_creds(t, c.with_changes(bounding=c.bounding & ~(1 << arg2)))
    return 0


def _get_tsc(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    t.mm.write_i32(arg2, PR.PR_TSC_ENABLE)
    return 0


def _set_tsc(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    # TODO(#4): making RDTSC fault (PR_TSC_SIGSEGV) in the application
    # needs the platform; until then only "enabled" is accepted.
    if arg2 != PR.PR_TSC_ENABLE:
        raise SyscallError(errno.EINVAL)
    return 0


def _get_securebits(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return t.creds.all_securebits


def _set_securebits(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    c = t.creds
    old = c.all_securebits
    locks = old & C.SECURE_ALL_LOCKS
    if (
        (locks >> 1) & (old ^ arg2)
        or locks & ~arg2
        or arg2 & ~(C.SECURE_ALL_LOCKS | C.SECURE_ALL_BITS)
        or not c.has_capability(C.CAP_SETPCAP)
    ):
        raise SyscallError(errno.EPERM)
    C.commit_creds(
        t,
        c.with_changes(
            keep_caps=bool(arg2 & C.SECBIT_KEEP_CAPS),
            securebits=arg2 & ~C.SECBIT_KEEP_CAPS,
        ),
    )
    return 0


def _get_timerslack(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    return t.sched.timer_slack_ns


def _set_timerslack(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    sched = t.sched
    if sched.policy in (SC.SCHED_FIFO, SC.SCHED_RR, SC.SCHED_DEADLINE):
        # Real-time tasks have no slack to change.
        return 0
    sched.timer_slack_ns = arg2 if arg2 else sched.default_timer_slack_ns
    return 0


def _perf_events(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    # No performance counters exist in the sandbox: nothing to switch.
    return 0


def _set_mm(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if not t.creds.has_capability(C.CAP_SYS_RESOURCE):
        raise SyscallError(errno.EPERM)
    # TODO(#3): changing the memory map's fields (start_brk, arg_start...).
    raise SyscallError(errno.EINVAL)


def _set_child_subreaper(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    t.tg.child_subreaper = bool(arg2)
    return 0


def _get_child_subreaper(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    t.mm.write_i32(arg2, int(t.tg.child_subreaper))
    return 0


def _set_no_new_privs(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 != 1 or arg3 or arg4 or arg5:
        raise SyscallError(errno.EINVAL)
    t.creds = t.creds.with_changes(no_new_privs=True)
    return 0


def _get_no_new_privs(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 or arg3 or arg4 or arg5:
        raise SyscallError(errno.EINVAL)
    return int(t.creds.no_new_privs)


def _get_tid_address(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    t.mm.write_u64(arg2, t.clear_child_tid)
    return 0


def _set_thp_disable(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg3 or arg4 or arg5:
        raise SyscallError(errno.EINVAL)
    t.tg.thp_disable = bool(arg2)
    return 0


def _get_thp_disable(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    if arg2 or arg3 or arg4 or arg5:
        raise SyscallError(errno.EINVAL)
    return int(t.tg.thp_disable)


def _cap_ambient(t: Task, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    c = t.creds
    if arg2 == PR.PR_CAP_AMBIENT_CLEAR_ALL:
        if arg3 or arg4 or arg5:
            raise SyscallError(errno.EINVAL)
        C.commit_creds(t, c.with_changes(ambient=0))
        return 0
    if arg3 > C.CAP_LAST_CAP or arg4 or arg5:
        raise SyscallError(errno.EINVAL)
    bit = 1 << arg3
    if arg2 == PR.PR_CAP_AMBIENT_IS_SET:
        return int(bool(c.ambient & bit))
    if arg2 == PR.PR_CAP_AMBIENT_RAISE:
        if (
            not c.permitted & bit
            or not c.inheritable & bit
            or c.securebits & C.SECBIT_NO_CAP_AMBIENT_RAISE
        ):
            raise SyscallError(errno.EPERM)
        C.commit_creds(t, c.with_changes(ambient=c.ambient | bit))
        return 0
    if arg2 == PR.PR_CAP_AMBIENT_LOWER:
        C.commit_creds(t, c.with_changes(ambient=c.ambient & ~bit))
        return 0
    raise SyscallError(errno.EINVAL)


PRCTL_HANDLERS: dict[int, PrctlHandler] = {
    PR.PR_SET_PDEATHSIG: _set_pdeathsig,
    PR.PR_GET_PDEATHSIG: _get_pdeathsig,
    PR.PR_GET_DUMPABLE: _get_dumpable,
    PR.PR_SET_DUMPABLE: _set_dumpable,
    PR.PR_SET_PTRACER: _set_ptracer,
    PR.PR_GET_KEEPCAPS: _get_keepcaps,
    PR.PR_SET_KEEPCAPS: _set_keepcaps,
    PR.PR_GET_TIMING: _get_timing,
    PR.PR_SET_TIMING: _set_timing,
    PR.PR_SET_NAME: _set_name,
    PR.PR_GET_NAME: _get_name,
    PR.PR_GET_SECCOMP: _get_seccomp,
    PR.PR_SET_SECCOMP: _set_seccomp,
    PR.PR_CAPBSET_READ: _capbset_read,
    PR.PR_CAPBSET_DROP: _capbset_drop,
    PR.PR_GET_TSC: _get_tsc,
    PR.PR_SET_TSC: _set_tsc,
    PR.PR_GET_SECUREBITS: _get_securebits,
    PR.PR_SET_SECUREBITS: _set_securebits,
    PR.PR_SET_TIMERSLACK: _set_timerslack,
    PR.PR_GET_TIMERSLACK: _get_timerslack,
    PR.PR_TASK_PERF_EVENTS_DISABLE: _perf_events,
    PR.PR_TASK_PERF_EVENTS_ENABLE: _perf_events,
    PR.PR_SET_MM: _set_mm,
    PR.PR_SET_CHILD_SUBREAPER: _set_child_subreaper,
    PR.PR_GET_CHILD_SUBREAPER: _get_child_subreaper,
    PR.PR_SET_NO_NEW_PRIVS: _set_no_new_privs,
    PR.PR_GET_NO_NEW_PRIVS: _get_no_new_privs,
    PR.PR_GET_TID_ADDRESS: _get_tid_address,
    PR.PR_SET_THP_DISABLE: _set_thp_disable,
    PR.PR_GET_THP_DISABLE: _get_thp_disable,
    PR.PR_CAP_AMBIENT: _cap_ambient,
}


def sys_prctl(t: Task, args: Args) -> int:
    """prctl(2)."""
    handler = PRCTL_HANDLERS.get(s32(args[0]))
    if handler is None:
        raise SyscallError(errno.EINVAL)
    return handler(t, args[1], args[2], args[3], args[4])


ENTRIES = [
    partial(
        N.SYS_arch_prctl,
        "arch_prctl",
        sys_arch_prctl,
        "no CPUID faulting (ARCH_SET_CPUID fails with ENODEV)",
    ),
    partial(
        N.SYS_prctl,
        "prctl",
        sys_prctl,
        "no PR_SET_TSC(PR_TSC_SIGSEGV), PR_SET_MM, PR_MCE_KILL, "
        "speculation control or syscall "
        "user dispatch: these fail with EINVAL",
    ),
]
