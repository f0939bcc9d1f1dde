"""arch_prctl(2) and prctl(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import prctl as PR
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
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


def sys_prctl(t: Task, args: Args) -> int:
    """prctl(2): the options applications use at start-up."""
    option, arg2 = s32(args[0]), args[1]
    if option == PR.PR_GET_NAME:
        name = t.name.encode()[: _TASK_COMM_LEN - 1]
        t.copy_out(arg2, name + bytes(_TASK_COMM_LEN - len(name)))
        return 0
    if option == PR.PR_SET_NAME:
        raw = t.mm.copy_in_partial(arg2, _TASK_COMM_LEN)
        if not raw:
            raise SyscallError(errno.EFAULT)
        t.name = raw.split(b"\0", 1)[0][: _TASK_COMM_LEN - 1].decode(errors="replace")
        return 0
    if option == PR.PR_GET_DUMPABLE:
        return 1
    if option == PR.PR_SET_DUMPABLE:
        if arg2 not in (0, 1):
            raise SyscallError(errno.EINVAL)
        return 0
    if option == PR.PR_GET_NO_NEW_PRIVS:
        return int(t.creds.no_new_privs)
    if option == PR.PR_SET_NO_NEW_PRIVS:
        if arg2 != 1 or any(args[2:5]):
            raise SyscallError(errno.EINVAL)
        t.creds = t.creds.with_changes(no_new_privs=True)
        return 0
    if option == PR.PR_GET_SECCOMP:
        return prctl_get_seccomp(t)
    if option == PR.PR_SET_SECCOMP:
        return prctl_set_seccomp(t, arg2, args[2])
    if option == PR.PR_CAPBSET_READ:
        if arg2 > 40:
            raise SyscallError(errno.EINVAL)
        return t.creds.bounding >> arg2 & 1
    # TODO(#4): the remaining prctl options.
    raise SyscallError(errno.EINVAL)


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
        "names, dumpable, no_new_privs, seccomp, capability bounding reads (#4)",
    ),
]
