"""pipe(2) and pipe2(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipefs import new_pipe
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_FDS = struct.Struct("<ii")


def _pipe2(t: Task, addr: int, flags: int) -> int:
    if flags & ~(F.O_CLOEXEC | F.O_NONBLOCK | F.O_DIRECT):
        # O_NOTIFICATION_PIPE (O_EXCL) needs watch queues, which the
        # sandbox lacks, as a kernel without CONFIG_WATCH_QUEUE.
        raise SyscallError(errno.EINVAL)
    r, w = new_pipe(t.kernel.vfs, t.creds, flags)
    try:
        fds = t.fd_table.new_fds([r, w], bool(flags & F.O_CLOEXEC), fd_limit(t))
    except SyscallError:
        r.dec_ref()
        w.dec_ref()
        raise
    try:
        t.copy_out(addr, _FDS.pack(fds[0], fds[1]))
    except SyscallError:
        for fd in fds:
            t.fd_table.close(fd)
        raise
    return 0


def sys_pipe(t: Task, args: Args) -> int:
    """pipe(2)."""
    return _pipe2(t, args[0], 0)


def sys_pipe2(t: Task, args: Args) -> int:
    """pipe2(2)."""
    return _pipe2(t, args[0], s32(args[1]))


ENTRIES = [
    full(N.SYS_pipe, "pipe", sys_pipe),
    partial(
        N.SYS_pipe2,
        "pipe2",
        sys_pipe2,
        "O_DIRECT is accepted but packet mode is not modelled; "
        "O_NOTIFICATION_PIPE fails with EINVAL",
    ),
]
