"""getrlimit(2), setrlimit(2) and prlimit64(2) (kernel/sys.c do_prlimit).

Where each limit is enforced is described in pkg/sentry/kernel/limits.py.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_RESOURCE
from pkg.sentry.kernel.limits import NR_OPEN
from pkg.sentry.syscalls.syscall import Args, full, partial, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

_RLIMIT = struct.Struct("<QQ")


def do_prlimit(
    t: Task, tg: ThreadGroup, resource: int, new: tuple[int, int] | None
) -> tuple[int, int]:
    """Reads and optionally replaces one limit of tg; returns the old one.

    Raises:
        SyscallError: EINVAL for an unknown resource or soft > hard, EPERM
            for raising a hard limit without CAP_SYS_RESOURCE or a
            RLIMIT_NOFILE above fs.nr_open.
    """
    if not 0 <= resource < L.RLIM_NLIMITS:
        raise SyscallError(errno.EINVAL)
    if new is not None:
        soft, hard = new
        if soft > hard:
            raise SyscallError(errno.EINVAL)
        if resource == L.RLIMIT_NOFILE and hard > NR_OPEN:
            raise SyscallError(errno.EPERM)
    limits = tg.limits
    with limits.mu:
        old = limits.get(resource)
        if new is not None:
            if new[1] > old[1] and not t.creds.has_capability(CAP_SYS_RESOURCE):
                raise SyscallError(errno.EPERM)
            # TODO(#4): RLIMIT_CPU is stored but no CPU timer enforces it.
            limits.set(resource, *new)
    return old


def _read_rlimit(t: Task, addr: int) -> tuple[int, int]:
    soft, hard = _RLIMIT.unpack(t.copy_in(addr, _RLIMIT.size))
    return soft, hard


def sys_getrlimit(t: Task, args: Args) -> int:
    """getrlimit(2)."""
    old = do_prlimit(t, t.tg, u32(args[0]), None)
    t.copy_out(args[1], _RLIMIT.pack(*old))
    return 0


def sys_setrlimit(t: Task, args: Args) -> int:
    """setrlimit(2)."""
    new = _read_rlimit(t, args[1])
    do_prlimit(t, t.tg, u32(args[0]), new)
    return 0


def _may_prlimit(t: Task, target: Task) -> None:
    """check_prlimit_permission: the caller's real ids must equal every id
    of the target, or the caller needs CAP_SYS_RESOURCE."""
    if target is t:
        return
    c, tc = t.creds, target.creds
    same = (
        c.ruid == tc.euid == tc.suid == tc.ruid
        and c.rgid == tc.egid == tc.sgid == tc.rgid
    )
    if not same and not c.has_capability(CAP_SYS_RESOURCE):
        raise SyscallError(errno.EPERM)


def sys_prlimit64(t: Task, args: Args) -> int:
    """prlimit64(2)."""
    pid, resource, new_addr, old_addr = (
        u32(args[0]),
        u32(args[1]),
        args[2],
        args[3],
    )
    new = _read_rlimit(t, new_addr) if new_addr else None
    target = t
    if pid:
        found = t.kernel.tasks.find_task(pid)
        if found is None:
            raise SyscallError(errno.ESRCH)
        target = found
    _may_prlimit(t, target)
    old = do_prlimit(t, target.tg, resource, new)
    if old_addr:
        t.copy_out(old_addr, _RLIMIT.pack(*old))
    return 0


ENTRIES = [
    full(N.SYS_getrlimit, "getrlimit", sys_getrlimit),
    partial(
        N.SYS_setrlimit,
        "setrlimit",
        sys_setrlimit,
        "RLIMIT_CPU is recorded but not enforced (#4)",
    ),
    partial(
        N.SYS_prlimit64,
        "prlimit64",
        sys_prlimit64,
        "as setrlimit",
    ),
]
