"""File attributes: stat(2), lstat(2), fstat(2), newfstatat(2), statx(2),
statfs(2), fstatfs(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32, u32
from pkg.sentry.vfs.task_path import copy_in_path, file_for_empty_path, path_operation
from pkg.sentry.vfs.vfs import with_mount_flags, with_mount_id

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

_STAT_AT_FLAGS = F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH | F.AT_NO_AUTOMOUNT


def stat_path(t: Task, dirfd: int, path_addr: int, flags: int, mask: int) -> S.Statx:
    """Returns the attributes of (dirfd, path) as the *stat* calls name
    files; AT_EMPTY_PATH with an empty (or, as since Linux 6.11, NULL) path
    names dirfd itself."""
    empty_ok = bool(flags & F.AT_EMPTY_PATH)
    path = b"" if empty_ok and path_addr == 0 else copy_in_path(t, path_addr)
    if not path and empty_ok:
        f = file_for_empty_path(t, dirfd)
        if f is not None:
            return stat_file(t, f, mask)
    pop = path_operation(
        t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW, allow_empty=empty_ok
    )
    return t.kernel.vfs.stat_at(t, t.creds, pop, mask)


def stat_file(t: Task, f: FileDescription, mask: int) -> S.Statx:
    """Returns the attributes of an open file."""
    st = f.stat(t, mask)
    if f.vd is not None:
        st = with_mount_id(st, f.vd.mount)
    return st


def sys_stat(t: Task, args: Args) -> int:
    """stat(2)."""
    st = stat_path(t, F.AT_FDCWD, args[0], 0, S.STATX_BASIC_STATS)
    t.copy_out(args[1], st.pack_stat())
    return 0


def sys_lstat(t: Task, args: Args) -> int:
    """lstat(2)."""
    st = stat_path(t, F.AT_FDCWD, args[0], F.AT_SYMLINK_NOFOLLOW, S.STATX_BASIC_STATS)
    t.copy_out(args[1], st.pack_stat())
    return 0


def sys_fstat(t: Task, args: Args) -> int:
    """fstat(2); O_PATH files may be examined."""
    st = stat_file(t, t.fd_table.get(s32(args[0])), S.STATX_BASIC_STATS)
    t.copy_out(args[1], st.pack_stat())
    return 0


def sys_newfstatat(t: Task, args: Args) -> int:
    """newfstatat(2) (fstatat)."""
    dirfd, path_addr, buf, flags = s32(args[0]), args[1], args[2], s32(args[3])
    if flags & ~_STAT_AT_FLAGS:
        raise SyscallError(errno.EINVAL)
    st = stat_path(t, dirfd, path_addr, flags, S.STATX_BASIC_STATS)
    t.copy_out(buf, st.pack_stat())
    return 0


def sys_statx(t: Task, args: Args) -> int:
    """statx(2)."""
    dirfd, path_addr, flags = s32(args[0]), args[1], s32(args[2])
    mask, buf = u32(args[3]), args[4]
    if flags & ~(_STAT_AT_FLAGS | F.AT_STATX_SYNC_TYPE):
        raise SyscallError(errno.EINVAL)
    if flags & F.AT_STATX_SYNC_TYPE == F.AT_STATX_SYNC_TYPE:
        raise SyscallError(errno.EINVAL)
    if mask & S.STATX__RESERVED:
        raise SyscallError(errno.EINVAL)
    st = stat_path(t, dirfd, path_addr, flags, mask)
    t.copy_out(buf, st.pack_statx())
    return 0


def _copy_out_statfs(t: Task, addr: int, st: Statfs) -> int:
    t.copy_out(addr, st.pack())
    return 0


def sys_statfs(t: Task, args: Args) -> int:
    """statfs(2)."""
    pop = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[0]), follow=True)
    return _copy_out_statfs(t, args[1], t.kernel.vfs.statfs_at(t, t.creds, pop))


def sys_fstatfs(t: Task, args: Args) -> int:
    """fstatfs(2); O_PATH files may be examined."""
    f = t.fd_table.get(s32(args[0]))
    st = f.statfs(t)
    if f.vd is not None:
        st = with_mount_flags(st, f.vd.mount)
    return _copy_out_statfs(t, args[1], st)


ENTRIES = [
    full(N.SYS_stat, "stat", sys_stat),
    full(N.SYS_fstat, "fstat", sys_fstat),
    full(N.SYS_lstat, "lstat", sys_lstat),
    full(N.SYS_statfs, "statfs", sys_statfs),
    full(N.SYS_fstatfs, "fstatfs", sys_fstatfs),
    full(N.SYS_newfstatat, "newfstatat", sys_newfstatat),
    full(N.SYS_statx, "statx", sys_statx),
]
