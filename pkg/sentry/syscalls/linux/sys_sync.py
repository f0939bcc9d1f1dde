"""Writing back and allocating: fsync(2), fdatasync(2), sync(2),
syncfs(2), sync_file_range(2), fallocate(2), fadvise64(2),
readahead(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32, s64, u32
from pkg.sentry.vfs.task_path import get_file

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

_MAX_OFF = (1 << 63) - 1
_FALLOC_MODES = (
    F.FALLOC_FL_KEEP_SIZE
    | F.FALLOC_FL_PUNCH_HOLE
    | F.FALLOC_FL_NO_HIDE_STALE
    | F.FALLOC_FL_COLLAPSE_RANGE
    | F.FALLOC_FL_ZERO_RANGE
    | F.FALLOC_FL_INSERT_RANGE
    | F.FALLOC_FL_UNSHARE_RANGE
)


def _mode(t: Task, f: FileDescription) -> int:
    return f.stat(t, S.STATX_TYPE).mode


def sys_fsync(t: Task, args: Args) -> int:
    """fsync(2)."""
    get_file(t, s32(args[0])).sync(t)
    return 0


def sys_fdatasync(t: Task, args: Args) -> int:
    """fdatasync(2)."""
    get_file(t, s32(args[0])).sync(t)
    return 0


def sys_sync(t: Task, args: Args) -> int:
    """sync(2)."""
    t.kernel.vfs.sync_all_filesystems(t.fs.mount_ns)
    return 0


def sys_syncfs(t: Task, args: Args) -> int:
    """syncfs(2)."""
    f = get_file(t, s32(args[0]))
    if f.vd is not None:
        f.vd.mount.fs.sync()
    return 0


def sys_sync_file_range(t: Task, args: Args) -> int:
    """sync_file_range(2): contents are written back at once."""
    fd, offset, nbytes, flags = s32(args[0]), s64(args[1]), s64(args[2]), u32(args[3])
    valid = (
        F.SYNC_FILE_RANGE_WAIT_BEFORE
        | F.SYNC_FILE_RANGE_WRITE
        | F.SYNC_FILE_RANGE_WAIT_AFTER
    )
    if flags & ~valid:
        raise SyscallError(errno.EINVAL)
    if offset < 0 or nbytes < 0 or offset + nbytes > _MAX_OFF:
        raise SyscallError(errno.EINVAL)
    f = get_file(t, fd)
    fmt = _mode(t, f) & S.S_IFMT
    if fmt not in (S.S_IFREG, S.S_IFBLK, S.S_IFDIR, S.S_IFLNK):
        raise SyscallError(errno.ESPIPE)
    if flags & F.SYNC_FILE_RANGE_WRITE:
        f.sync(t)
    return 0


def sys_fallocate(t: Task, args: Args) -> int:
    """fallocate(2) (vfs_fallocate's checks; filesystems implement the
    modes they support)."""
    fd, mode, offset, length = s32(args[0]), s32(args[1]), s64(args[2]), s64(args[3])
    if offset < 0 or length <= 0:
        raise SyscallError(errno.EINVAL)
    if mode & ~_FALLOC_MODES:
        raise SyscallError(errno.EOPNOTSUPP)
    if mode & F.FALLOC_FL_PUNCH_HOLE and not mode & F.FALLOC_FL_KEEP_SIZE:
        raise SyscallError(errno.EOPNOTSUPP)
    f = get_file(t, fd)
    if not f.writable:
        raise SyscallError(errno.EBADF)
    fmt = _mode(t, f) & S.S_IFMT
    if fmt == S.S_IFIFO:
        raise SyscallError(errno.ESPIPE)
    if fmt == S.S_IFDIR:
        raise SyscallError(errno.EISDIR)
    if fmt not in (S.S_IFREG, S.S_IFBLK):
        raise SyscallError(errno.ENODEV)
    if offset + length > _MAX_OFF:
        raise SyscallError(errno.EFBIG)
    if f.vd is not None and mode & ~F.FALLOC_FL_KEEP_SIZE == 0:
        f.vd.mount.check_begin_write()
    f.allocate(t, mode, offset, length)
    return 0


def sys_fadvise64(t: Task, args: Args) -> int:
    """fadvise64(2): advice is checked and, like tmpfs does, ignored."""
    fd, _offset, length, advice = s32(args[0]), s64(args[1]), s64(args[2]), s32(args[3])
    f = get_file(t, fd)
    if _mode(t, f) & S.S_IFMT == S.S_IFIFO:
        raise SyscallError(errno.ESPIPE)
    if length < 0 or advice not in range(F.POSIX_FADV_NORMAL, F.POSIX_FADV_NOREUSE + 1):
        raise SyscallError(errno.EINVAL)
    return 0


def sys_readahead(t: Task, args: Args) -> int:
    """readahead(2): contents are in memory already."""
    f = get_file(t, s32(args[0]))
    if not f.readable:
        raise SyscallError(errno.EBADF)
    if not S.S_ISREG(_mode(t, f)):
        raise SyscallError(errno.EINVAL)
    return 0


ENTRIES = [
    full(N.SYS_fsync, "fsync", sys_fsync),
    full(N.SYS_fdatasync, "fdatasync", sys_fdatasync),
    full(N.SYS_readahead, "readahead", sys_readahead),
    full(N.SYS_fadvise64, "fadvise64", sys_fadvise64),
    full(N.SYS_sync, "sync", sys_sync),
    full(N.SYS_sync_file_range, "sync_file_range", sys_sync_file_range),
    full(N.SYS_fallocate, "fallocate", sys_fallocate),
    full(N.SYS_syncfs, "syncfs", sys_syncfs),
]
