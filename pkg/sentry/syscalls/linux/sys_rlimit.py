"""getrlimit(2), setrlimit(2) and prlimit64(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_RESOURCE
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

_RLIMIT = struct.Struct("<QQ")
# fs.nr_open: RLIMIT_NOFILE may not exceed it.
_NR_OPEN = 1 << 20


def _prlimit(
    t: Task, tg: ThreadGroup, resource: int, new_addr: int, old_addr: int
) -> None:
    if not 0 <= resource < L.RLIM_NLIMITS:
        raise SyscallError(errno.EINVAL)
    new = None
    if new_addr:
        soft, hard = _RLIMIT.unpack(t.copy_in(new_addr, 16))
        if soft > hard:
            raise SyscallError(errno.EINVAL)
        if resource == L.RLIMIT_NOFILE and hard > _NR_OPEN:
            raise SyscallError(errno.EPERM)
        new = (soft, hard)
    old = tg.limits.get(resource)
    if new is not None:
        if new[1] > old[1] and not t.creds.has_capability(CAP_SYS_RESOURCE):
            raise SyscallError(errno.EPERM)
        tg.limits.set(resource, *new)
    if old_addr:
        t.copy_out(old_addr, _RLIMIT.pack(*old))


def sys_getrlimit(t: Task, args: Args) -> int:
    """getrlimit(2)."""
    _prlimit(t, t.tg, s32(args[0]), 0, args[1])
    return 0


def sys_setrlimit(t: Task, args: Args) -> int:
    """setrlimit(2)."""
    _prlimit(t, t.tg, s32(args[0]), args[1], 0)
    return 0


def sys_prlimit64(t: Task, args: Args) -> int:
    """prlimit64(2)."""
    pid, resource = s32(args[0]), s32(args[1])
    tg = t.tg
    if pid:
        with t.kernel.tasks.mu:
            target = t.kernel.tasks.tasks.get(pid)
        if target is None:
            raise SyscallError(errno.ESRCH)
        tg = target.tg
        if tg is not t.tg and not t.creds.has_capability(CAP_SYS_RESOURCE):
            c, tc = t.creds, target.creds
            if (c.ruid, c.euid, c.suid) != (tc.ruid, tc.ruid, tc.ruid):
                raise SyscallError(errno.EPERM)
    _prlimit(t, tg, resource, args[2], args[3])
    return 0


ENTRIES = [
    full(N.SYS_getrlimit, "getrlimit", sys_getrlimit),
    full(N.SYS_setrlimit, "setrlimit", sys_setrlimit),
    full(N.SYS_prlimit64, "prlimit64", sys_prlimit64),
]
