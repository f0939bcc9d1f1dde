"""Descriptor operations: close(2), dup(2), dup2(2), dup3(2), fcntl(2)
and ioctl(2)'s generic requests."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import limits as L
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.linux.sys_lock import LOCK_COMMANDS, fcntl_lock
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


# The fcntl commands an O_PATH file accepts (check_fcntl_cmd).
_PATH_FCNTL_CMDS = frozenset(
    (F.F_DUPFD, F.F_DUPFD_CLOEXEC, F.F_GETFD, F.F_SETFD, F.F_GETFL, F.F_DUPFD_QUERY)
)
# struct f_owner_ex: type, pid.
_F_OWNER_EX = struct.Struct("<ii")


def fd_limit(t: Task) -> int:
    """The RLIMIT_NOFILE soft limit of the calling process."""
    return min(t.tg.limits.soft(L.RLIMIT_NOFILE), 1 << 20)


def sys_close(t: Task, args: Args) -> int:
    """close(2)."""
    t.fd_table.close(s32(args[0]))
    return 0


def sys_dup(t: Task, args: Args) -> int:
    """dup(2)."""
    f = t.fd_table.get(s32(args[0]))
    f.inc_ref()
    try:
        return t.fd_table.new_fd(f, limit=fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def _dup_to(t: Task, old: int, new: int, cloexec: bool) -> int:
    f = t.fd_table.get(old)
    if new < 0 or new >= fd_limit(t):
        raise SyscallError(errno.EBADF)
    f.inc_ref()
    t.fd_table.set_fd(new, f, cloexec)
    return new


def sys_dup2(t: Task, args: Args) -> int:
    """dup2(2)."""
    old, new = s32(args[0]), s32(args[1])
    if old == new:
        t.fd_table.get(old)
        return new
    return _dup_to(t, old, new, False)


def sys_dup3(t: Task, args: Args) -> int:
    """dup3(2)."""
    old, new, flags = s32(args[0]), s32(args[1]), s32(args[2])
    if flags & ~F.O_CLOEXEC or old == new:
        raise SyscallError(errno.EINVAL)
    return _dup_to(t, old, new, bool(flags & F.O_CLOEXEC))


def sys_fcntl(t: Task, args: Args) -> int:
    """fcntl(2): descriptor and status flag commands."""
    fd, cmd, arg = s32(args[0]), s32(args[1]), args[2]
    table = t.fd_table
    if cmd not in _PATH_FCNTL_CMDS and table.get(fd).is_path:
        raise SyscallError(errno.EBADF)
    if cmd in (F.F_DUPFD, F.F_DUPFD_CLOEXEC):
        f = table.get(fd)
        lowest = s32(arg)
        limit = fd_limit(t)
        if lowest < 0 or lowest >= limit:
            raise SyscallError(errno.EINVAL)
        f.inc_ref()
        try:
            return table.new_fd(f, cmd == F.F_DUPFD_CLOEXEC, lowest, limit)
        except SyscallError:
            f.dec_ref()
            raise
    if cmd == F.F_GETFD:
        _f, cloexec = table.get_with_flags(fd)
        return F.FD_CLOEXEC if cloexec else 0
    if cmd == F.F_SETFD:
        table.set_cloexec(fd, bool(arg & F.FD_CLOEXEC))
        return 0
    if cmd == F.F_GETFL:
        return table.get(fd).flags
    if cmd == F.F_SETFL:
        table.get(fd).set_status_flags(s32(arg))
        return 0
    if cmd == F.F_ADD_SEALS:
        table.get(fd).add_seals(arg & 0xFFFFFFFF)
        return 0
    if cmd == F.F_GET_SEALS:
        return table.get(fd).get_seals()
    f = table.get(fd)
    if cmd in LOCK_COMMANDS:
        return fcntl_lock(t, f, cmd, arg)
    if cmd == F.F_GETOWN:
        kind, owner = f.owner
        return -owner if kind == F.F_OWNER_PGRP else owner
    if cmd == F.F_SETOWN:
        # TODO(#5): SIGIO/SIGURG delivery for O_ASYNC; the owner is kept
        # for F_GETOWN.
        pid = s32(arg)
        f.owner = (F.F_OWNER_PGRP, -pid) if pid < 0 else (F.F_OWNER_PID, pid)
        return 0
    if cmd == F.F_GETOWN_EX:
        t.copy_out(arg, _F_OWNER_EX.pack(*f.owner))
        return 0
    if cmd == F.F_SETOWN_EX:
        kind, pid = _F_OWNER_EX.unpack(t.copy_in(arg, _F_OWNER_EX.size))
        if kind not in (F.F_OWNER_TID, F.F_OWNER_PID, F.F_OWNER_PGRP) or pid < 0:
            raise SyscallError(errno.EINVAL)
        f.owner = (kind, pid)
        return 0
    if cmd == F.F_GETSIG:
        return f.signal
    if cmd == F.F_SETSIG:
        signo = s32(arg)
        if not 0 <= signo <= 64:
            raise SyscallError(errno.EINVAL)
        f.signal = signo
        return 0
    if cmd == F.F_GETPIPE_SZ:
        return f.get_pipe_size()
    if cmd == F.F_SETPIPE_SZ:
        return f.set_pipe_size(t, arg)
    if cmd == F.F_GETLEASE:
        # No lease is ever held: leases are disabled (fs.leases-enable=0).
        return F.F_UNLCK
    if cmd == F.F_SETLEASE:
        raise SyscallError(errno.EINVAL)
    if cmd == F.F_NOTIFY:
        # As a kernel without CONFIG_DNOTIFY.
        raise SyscallError(errno.EINVAL)
    if cmd == F.F_DUPFD_QUERY:
        try:
            other = table.get(s32(arg))
        except SyscallError:
            return 0
        return int(other is f)
    raise SyscallError(errno.EINVAL)


def sys_ioctl(t: Task, args: Args) -> int:
    """ioctl(2): generic requests here, the rest by the file."""
    fd, cmd, arg = s32(args[0]), args[1] & 0xFFFFFFFF, args[2]
    f = t.fd_table.get(fd)
    if f.is_path:
        raise SyscallError(errno.EBADF)
    if cmd == I.FIOCLEX:
        t.fd_table.set_cloexec(fd, True)
        return 0
    if cmd == I.FIONCLEX:
        t.fd_table.set_cloexec(fd, False)
        return 0
    if cmd == I.FIOASYNC:
        on = t.mm.read_i32(arg)
        flags = f.flags | F.O_ASYNC if on else f.flags & ~F.O_ASYNC
        f.set_status_flags(flags)
        return 0
    if cmd == I.FIONBIO:
        on = t.mm.read_i32(arg)
        flags = f.flags | F.O_NONBLOCK if on else f.flags & ~F.O_NONBLOCK
        f.set_status_flags(flags)
        return 0
    return f.ioctl(t, cmd, arg)


ENTRIES = [
    full(N.SYS_close, "close", sys_close),
    partial(
        N.SYS_ioctl,
        "ioctl",
        sys_ioctl,
        "generic requests, FIONREAD on files and pipes, and the host "
        "terminal's TCGETS/TCSETS*/TIOCGWINSZ/TIOCSWINSZ/FIONREAD",
    ),
    full(N.SYS_dup, "dup", sys_dup),
    full(N.SYS_dup2, "dup2", sys_dup2),
    partial(
        N.SYS_fcntl,
        "fcntl",
        sys_fcntl,
        "F_SETOWN does not deliver SIGIO; leases and dnotify fail with "
        "EINVAL (as with them disabled)",
    ),
    full(N.SYS_dup3, "dup3", sys_dup3),
]
