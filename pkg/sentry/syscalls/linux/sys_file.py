"""Descriptor operations that need no filesystem: close(2), dup(2), dup2(2),
dup3(2), fcntl(2) descriptor commands, ioctl(2) generic requests, and
getcwd(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import limits as L
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


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
    handler = getattr(f, "fcntl", None)
    if handler is None:
        # TODO(#5): locks, leases, owners, pipe sizes and seals.
        raise SyscallError(errno.EINVAL)
    return handler(t, cmd, arg)


def sys_ioctl(t: Task, args: Args) -> int:
    """ioctl(2): generic requests here, the rest by the file."""
    fd, cmd, arg = s32(args[0]), args[1] & 0xFFFFFFFF, args[2]
    f = t.fd_table.get(fd)
    if cmd == I.FIOCLEX:
        t.fd_table.set_cloexec(fd, True)
        return 0
    if cmd == I.FIONCLEX:
        t.fd_table.set_cloexec(fd, False)
        return 0
    if cmd == I.FIONBIO:
        on = t.mm.read_i32(arg)
        flags = f.flags | F.O_NONBLOCK if on else f.flags & ~F.O_NONBLOCK
        f.set_status_flags(flags)
        return 0
    return f.ioctl(t, cmd, arg)


def sys_getcwd(t: Task, args: Args) -> int:
    """getcwd(2): returns the length including the terminator."""
    addr, size = args[0], args[1]
    path = t.fs.cwd_path() if hasattr(t.fs, "cwd_path") else t.fs.cwd
    data = (path if isinstance(path, bytes) else str(path).encode()) + b"\0"
    if size < len(data):
        raise SyscallError(errno.ERANGE)
    t.copy_out(addr, data)
    return len(data)


ENTRIES = [
    full(N.SYS_close, "close", sys_close),
    partial(
        N.SYS_ioctl,
        "ioctl",
        sys_ioctl,
        "generic requests and the host terminal's TCGETS/TCSETS*/"
        "TIOCGWINSZ/TIOCSWINSZ/FIONREAD",
    ),
    full(N.SYS_dup, "dup", sys_dup),
    full(N.SYS_dup2, "dup2", sys_dup2),
    partial(
        N.SYS_fcntl,
        "fcntl",
        sys_fcntl,
        "descriptor and status flag commands; locks and the rest come "
        "with the VFS (#5)",
    ),
    full(N.SYS_getcwd, "getcwd", sys_getcwd),
    full(N.SYS_dup3, "dup3", sys_dup3),
]
