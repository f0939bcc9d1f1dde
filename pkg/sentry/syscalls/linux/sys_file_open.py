"""Opening files: open(2), openat(2), openat2(2), creat(2), and
close_range(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32
from pkg.sentry.vfs.options import OpenOptions
from pkg.sentry.vfs.task_path import copy_in_path, path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# The flags an O_PATH open keeps (O_PATH_FLAGS).
O_PATH_FLAGS = F.O_DIRECTORY | F.O_NOFOLLOW | F.O_PATH | F.O_CLOEXEC
# O_TMPFILE's mask: O_TMPFILE includes O_DIRECTORY; O_CREAT may not come
# with it.
_O_TMPFILE_MASK = F.O_TMPFILE | F.O_CREAT
_OPEN_HOW = struct.Struct("<QQQ")
_PAGE_SIZE = 4096


def _check_flags(flags: int) -> None:
    """The checks of build_open_flags shared by every open."""
    if flags & F.O_TMPFILE & ~F.O_DIRECTORY:
        if flags & _O_TMPFILE_MASK != F.O_TMPFILE:
            raise SyscallError(errno.EINVAL)
        if flags & F.O_ACCMODE not in (F.O_WRONLY, F.O_RDWR):
            raise SyscallError(errno.EINVAL)
    if flags & (F.O_DIRECTORY | F.O_CREAT) == F.O_DIRECTORY | F.O_CREAT:
        raise SyscallError(errno.EINVAL)


def do_open(
    t: Task, dirfd: int, path: bytes, flags: int, mode: int, resolve: int = 0
) -> int:
    """Opens path relative to dirfd and installs a descriptor for it.

    Args:
        flags: validated open flags.
        mode: the creation mode before the umask.
        resolve: openat2 RESOLVE_* flags.

    Returns:
        The new descriptor.
    """
    if flags & (F.O_CREAT | F.O_TMPFILE & ~F.O_DIRECTORY):
        mode = mode & S.S_IALLUGO & ~t.fs.umask
    else:
        mode = 0
    pop = path_operation(
        t, dirfd, path, follow=not flags & F.O_NOFOLLOW, resolve=resolve
    )
    f = t.kernel.vfs.open_at(t, t.creds, pop, OpenOptions(flags, mode))
    try:
        return t.fd_table.new_fd(f, bool(flags & F.O_CLOEXEC), limit=fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def _openat(t: Task, dirfd: int, path_addr: int, flags: int, mode: int) -> int:
    flags &= F.VALID_OPEN_FLAGS
    if flags & F.O_PATH:
        flags &= O_PATH_FLAGS
    _check_flags(flags)
    path = copy_in_path(t, path_addr)
    return do_open(t, dirfd, path, flags, mode)


def sys_open(t: Task, args: Args) -> int:
    """open(2)."""
    return _openat(t, F.AT_FDCWD, args[0], u32(args[1]), u32(args[2]))


def sys_openat(t: Task, args: Args) -> int:
    """openat(2)."""
    return _openat(t, s32(args[0]), args[1], u32(args[2]), u32(args[3]))


def sys_creat(t: Task, args: Args) -> int:
    """creat(2): open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)."""
    flags = F.O_CREAT | F.O_WRONLY | F.O_TRUNC
    return _openat(t, F.AT_FDCWD, args[0], flags, u32(args[1]))


def sys_openat2(t: Task, args: Args) -> int:
    """openat2(2): struct open_how, strictly checked."""
    dirfd, path_addr, how_addr, size = s32(args[0]), args[1], args[2], args[3]
    if size < F.OPEN_HOW_SIZE_VER0:
        raise SyscallError(errno.EINVAL)
    if size > _PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    raw = t.copy_in(how_addr, size)
    if any(raw[F.OPEN_HOW_SIZE_VER0 :]):
        raise SyscallError(errno.E2BIG)
    flags, mode, resolve = _OPEN_HOW.unpack_from(raw)
    if flags & ~F.VALID_OPEN_FLAGS:
        raise SyscallError(errno.EINVAL)
    if resolve & ~F.RESOLVE_ALL:
        raise SyscallError(errno.EINVAL)
    if resolve & F.RESOLVE_BENEATH and resolve & F.RESOLVE_IN_ROOT:
        raise SyscallError(errno.EINVAL)
    creating = flags & (F.O_CREAT | F.O_TMPFILE & ~F.O_DIRECTORY)
    if mode & ~S.S_IALLUGO or (mode and not creating):
        raise SyscallError(errno.EINVAL)
    if flags & F.O_PATH and flags & ~O_PATH_FLAGS:
        raise SyscallError(errno.EINVAL)
    _check_flags(flags)
    if resolve & F.RESOLVE_CACHED and flags & (
        F.O_CREAT | F.O_TRUNC | F.O_TMPFILE & ~F.O_DIRECTORY
    ):
        raise SyscallError(errno.EAGAIN)
    path = copy_in_path(t, path_addr)
    return do_open(t, dirfd, path, flags, mode, resolve)


def sys_close_range(t: Task, args: Args) -> int:
    """close_range(2)."""
    first, last, flags = u32(args[0]), u32(args[1]), u32(args[2])
    if flags & ~(F.CLOSE_RANGE_UNSHARE | F.CLOSE_RANGE_CLOEXEC):
        raise SyscallError(errno.EINVAL)
    if first > last:
        raise SyscallError(errno.EINVAL)
    if flags & F.CLOSE_RANGE_UNSHARE and t.fd_table.users > 1:
        old = t.fd_table
        t.fd_table = old.fork()
        old.users -= 1
    t.fd_table.close_range(first, last, bool(flags & F.CLOSE_RANGE_CLOEXEC))
    return 0


ENTRIES = [
    full(N.SYS_open, "open", sys_open),
    full(N.SYS_creat, "creat", sys_creat),
    full(N.SYS_openat, "openat", sys_openat),
    partial(
        N.SYS_openat2,
        "openat2",
        sys_openat2,
        "RESOLVE_CACHED treats every path as cached (all filesystems are in memory)",
    ),
    full(N.SYS_close_range, "close_range", sys_close_range),
]
