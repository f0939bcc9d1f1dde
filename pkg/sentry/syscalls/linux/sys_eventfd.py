"""eventfd(2) and eventfd2(2). The file is pkg/sentry/fsimpl/eventfd."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import eventfd as E
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.eventfd.eventfd import new_eventfd
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, full, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def _eventfd(t: Task, initval: int, flags: int) -> int:
    if flags & ~E.EFD_FLAGS_SET:
        raise SyscallError(errno.EINVAL)
    f = new_eventfd(initval, flags)
    try:
        return t.fd_table.new_fd(f, bool(flags & E.EFD_CLOEXEC), 0, fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def sys_eventfd2(t: Task, args: Args) -> int:
    """eventfd2(2)."""
    return _eventfd(t, u32(args[0]), s32(args[1]))


def sys_eventfd(t: Task, args: Args) -> int:
    """eventfd(2): eventfd2 without flags."""
    return _eventfd(t, u32(args[0]), 0)


ENTRIES = [
    full(N.SYS_eventfd, "eventfd", sys_eventfd),
    full(N.SYS_eventfd2, "eventfd2", sys_eventfd2),
]
