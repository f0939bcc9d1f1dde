"""Changing and checking attributes: access(2), faccessat(2),
faccessat2(2), the chmod, chown and utime families, truncate(2),
ftruncate(2) and umask(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32, s64, u32
from pkg.sentry.vfs.options import UTIME_NOW, UTIME_OMIT, SetStatOptions
from pkg.sentry.vfs.permissions import MAY_EXEC, MAY_READ, MAY_WRITE
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.task_path import (
    copy_in_path,
    file_for_empty_path,
    get_file,
    path_operation,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task

_TIMESPEC = struct.Struct("<qq")
_TIMEVAL = struct.Struct("<qq")
_UTIMBUF = struct.Struct("<qq")
_NSEC_PER_SEC = 1_000_000_000
_NO_ID = 0xFFFFFFFF


# access(2).


def _access_creds(t: Task) -> Credentials:
    """The credentials access(2) checks with: the real ids, and for a
    non-root caller no capabilities (access_override_creds)."""
    c = t.creds
    effective = c.permitted if c.ruid == 0 else 0
    return c.with_changes(fsuid=c.ruid, fsgid=c.rgid, effective=effective)


def _faccessat(t: Task, dirfd: int, path_addr: int, mode: int, flags: int) -> int:
    if mode & ~(F.R_OK | F.W_OK | F.X_OK):
        raise SyscallError(errno.EINVAL)
    if flags & ~(F.AT_EACCESS | F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    creds = t.creds if flags & F.AT_EACCESS else _access_creds(t)
    ats = 0
    if mode & F.R_OK:
        ats |= MAY_READ
    if mode & F.W_OK:
        ats |= MAY_WRITE
    if mode & F.X_OK:
        ats |= MAY_EXEC
    pop = _path_or_fd(t, dirfd, path_addr, flags)
    t.kernel.vfs.access_at(t, creds, pop, ats)
    return 0


def _path_or_fd(t: Task, dirfd: int, path_addr: int, flags: int) -> PathOperation:
    """Returns the PathOperation for (dirfd, path) honouring
    AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH (an empty path names dirfd)."""
    path = copy_in_path(t, path_addr)
    follow = not flags & F.AT_SYMLINK_NOFOLLOW
    if not path and flags & F.AT_EMPTY_PATH:
        f = file_for_empty_path(t, dirfd)
        if f is not None:
            if f.vd is None:
                # TODO(#5): attributes of pipes and sockets by AT_EMPTY_PATH.
                raise SyscallError(errno.ENOENT)
            return PathOperation(root=t.fs.root, start=f.vd, path=b"", follow=follow)
    return path_operation(
        t, dirfd, path, follow, allow_empty=bool(flags & F.AT_EMPTY_PATH)
    )


def sys_access(t: Task, args: Args) -> int:
    """access(2)."""
    return _faccessat(t, F.AT_FDCWD, args[0], s32(args[1]), 0)


def sys_faccessat(t: Task, args: Args) -> int:
    """faccessat(2) (the system call has no flags argument)."""
    return _faccessat(t, s32(args[0]), args[1], s32(args[2]), 0)


def sys_faccessat2(t: Task, args: Args) -> int:
    """faccessat2(2)."""
    return _faccessat(t, s32(args[0]), args[1], s32(args[2]), s32(args[3]))


# chmod(2).


def _setstat_path(t: Task, pop: PathOperation, opts: SetStatOptions) -> int:
    t.kernel.vfs.setstat_at(t, t.creds, pop, opts)
    return 0


def _chmod_opts(mode: int) -> SetStatOptions:
    return SetStatOptions(mask=S.STATX_MODE, mode=mode & S.S_IALLUGO)


def _fchmodat(t: Task, dirfd: int, path_addr: int, mode: int, flags: int) -> int:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    pop = _path_or_fd(t, dirfd, path_addr, flags)
    if flags & F.AT_SYMLINK_NOFOLLOW:
        st = t.kernel.vfs.stat_at(t, t.creds, pop, S.STATX_MODE)
        if S.S_ISLNK(st.mode):
            raise SyscallError(errno.EOPNOTSUPP)
    return _setstat_path(t, pop, _chmod_opts(mode))


def sys_chmod(t: Task, args: Args) -> int:
    """chmod(2)."""
    return _fchmodat(t, F.AT_FDCWD, args[0], u32(args[1]), 0)


def sys_fchmodat(t: Task, args: Args) -> int:
    """fchmodat(2) (the system call has no flags argument)."""
    return _fchmodat(t, s32(args[0]), args[1], u32(args[2]), 0)


def sys_fchmodat2(t: Task, args: Args) -> int:
    """fchmodat2(2): AT_SYMLINK_NOFOLLOW fails with EOPNOTSUPP on a
    symbolic link."""
    return _fchmodat(t, s32(args[0]), args[1], u32(args[2]), s32(args[3]))


def sys_fchmod(t: Task, args: Args) -> int:
    """fchmod(2)."""
    get_file(t, s32(args[0])).setstat(t, _chmod_opts(u32(args[1])))
    return 0


# chown(2).


def _chown_opts(uid: int, gid: int) -> SetStatOptions:
    # Even chown(-1, -1) is a change: ctime moves and set-ID bits drop.
    uid, gid = u32(uid), u32(gid)
    return SetStatOptions(
        mask=S.STATX_UID | S.STATX_GID,
        uid=-1 if uid == _NO_ID else uid,
        gid=-1 if gid == _NO_ID else gid,
    )


def _fchownat(
    t: Task, dirfd: int, path_addr: int, uid: int, gid: int, flags: int
) -> int:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    pop = _path_or_fd(t, dirfd, path_addr, flags)
    return _setstat_path(t, pop, _chown_opts(uid, gid))


def sys_chown(t: Task, args: Args) -> int:
    """chown(2)."""
    return _fchownat(t, F.AT_FDCWD, args[0], args[1], args[2], 0)


def sys_lchown(t: Task, args: Args) -> int:
    """lchown(2)."""
    return _fchownat(t, F.AT_FDCWD, args[0], args[1], args[2], F.AT_SYMLINK_NOFOLLOW)


def sys_fchownat(t: Task, args: Args) -> int:
    """fchownat(2)."""
    return _fchownat(t, s32(args[0]), args[1], args[2], args[3], s32(args[4]))


def sys_fchown(t: Task, args: Args) -> int:
    """fchown(2)."""
    get_file(t, s32(args[0])).setstat(t, _chown_opts(args[1], args[2]))
    return 0


# utime(2), utimes(2), futimesat(2), utimensat(2).


def _times_opts(atime: int, mtime: int) -> SetStatOptions:
    mask = 0
    if atime != UTIME_OMIT:
        mask |= S.STATX_ATIME
    if mtime != UTIME_OMIT:
        mask |= S.STATX_MTIME
    return SetStatOptions(mask=mask, atime_ns=atime, mtime_ns=mtime)


def _utimes_path(
    t: Task, dirfd: int, path_addr: int, atime: int, mtime: int, follow: bool
) -> int:
    pop = path_operation(t, dirfd, copy_in_path(t, path_addr), follow)
    return _setstat_path(t, pop, _times_opts(atime, mtime))


def _read_timevals(t: Task, addr: int) -> tuple[int, int]:
    if addr == 0:
        return UTIME_NOW, UTIME_NOW
    raw = t.copy_in(addr, 2 * _TIMEVAL.size)
    out = []
    for i in range(2):
        sec, usec = _TIMEVAL.unpack_from(raw, i * _TIMEVAL.size)
        if not 0 <= usec < 1_000_000:
            raise SyscallError(errno.EINVAL)
        out.append(sec * _NSEC_PER_SEC + usec * 1000)
    return out[0], out[1]


def sys_utime(t: Task, args: Args) -> int:
    """utime(2)."""
    if args[1] == 0:
        atime = mtime = UTIME_NOW
    else:
        a, m = _UTIMBUF.unpack(t.copy_in(args[1], _UTIMBUF.size))
        atime, mtime = a * _NSEC_PER_SEC, m * _NSEC_PER_SEC
    return _utimes_path(t, F.AT_FDCWD, args[0], atime, mtime, True)


def sys_utimes(t: Task, args: Args) -> int:
    """utimes(2)."""
    atime, mtime = _read_timevals(t, args[1])
    return _utimes_path(t, F.AT_FDCWD, args[0], atime, mtime, True)


def sys_futimesat(t: Task, args: Args) -> int:
    """futimesat(2)."""
    atime, mtime = _read_timevals(t, args[2])
    return _utimes_path(t, s32(args[0]), args[1], atime, mtime, True)


def _nsec_valid(nsec: int) -> bool:
    return nsec in (UTIME_NOW, UTIME_OMIT) or 0 <= nsec < _NSEC_PER_SEC


def sys_utimensat(t: Task, args: Args) -> int:
    """utimensat(2); a NULL path with a dirfd changes that file
    (futimens)."""
    dirfd, path_addr, times_addr, flags = s32(args[0]), args[1], args[2], s32(args[3])
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    if times_addr == 0:
        atime = mtime = UTIME_NOW
    else:
        raw = t.copy_in(times_addr, 2 * _TIMESPEC.size)
        (asec, ansec), (msec, mnsec) = (
            _TIMESPEC.unpack_from(raw),
            _TIMESPEC.unpack_from(raw, _TIMESPEC.size),
        )
        if ansec == UTIME_OMIT and mnsec == UTIME_OMIT:
            # Nothing to do; Linux does not even look at the path.
            return 0
        if not (_nsec_valid(ansec) and _nsec_valid(mnsec)):
            raise SyscallError(errno.EINVAL)
        atime = (
            ansec if ansec in (UTIME_NOW, UTIME_OMIT) else asec * _NSEC_PER_SEC + ansec
        )
        mtime = (
            mnsec if mnsec in (UTIME_NOW, UTIME_OMIT) else msec * _NSEC_PER_SEC + mnsec
        )
    opts = _times_opts(atime, mtime)
    if path_addr == 0:
        if dirfd == F.AT_FDCWD:
            raise SyscallError(errno.EFAULT)
        if flags & F.AT_SYMLINK_NOFOLLOW:
            raise SyscallError(errno.EINVAL)
        f = t.fd_table.get(dirfd)
        if f.vd is None:
            f.setstat(t, opts)
            return 0
        pop = PathOperation(root=t.fs.root, start=f.vd, path=b"", follow=True)
        return _setstat_path(t, pop, opts)
    return _setstat_path(t, _path_or_fd(t, dirfd, path_addr, flags), opts)


# truncate(2), ftruncate(2).


def sys_truncate(t: Task, args: Args) -> int:
    """truncate(2)."""
    length = s64(args[1])
    if length < 0:
        raise SyscallError(errno.EINVAL)
    pop = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[0]), follow=True)
    return _setstat_path(t, pop, SetStatOptions(mask=S.STATX_SIZE, size=length))


def sys_ftruncate(t: Task, args: Args) -> int:
    """ftruncate(2)."""
    length = s64(args[1])
    if length < 0:
        raise SyscallError(errno.EINVAL)
    f = get_file(t, s32(args[0]))
    if not f.writable:
        raise SyscallError(errno.EINVAL)
    if not S.S_ISREG(f.stat(t, S.STATX_MODE).mode):
        raise SyscallError(errno.EINVAL)
    f.setstat(t, SetStatOptions(mask=S.STATX_SIZE, size=length))
    return 0


def sys_umask(t: Task, args: Args) -> int:
    """umask(2)."""
    return t.fs.swap_umask(u32(args[0]))


ENTRIES = [
    full(N.SYS_access, "access", sys_access),
    full(N.SYS_truncate, "truncate", sys_truncate),
    full(N.SYS_ftruncate, "ftruncate", sys_ftruncate),
    full(N.SYS_chmod, "chmod", sys_chmod),
    full(N.SYS_fchmod, "fchmod", sys_fchmod),
    full(N.SYS_chown, "chown", sys_chown),
    full(N.SYS_fchown, "fchown", sys_fchown),
    full(N.SYS_lchown, "lchown", sys_lchown),
    full(N.SYS_umask, "umask", sys_umask),
    full(N.SYS_utime, "utime", sys_utime),
    full(N.SYS_utimes, "utimes", sys_utimes),
    full(N.SYS_futimesat, "futimesat", sys_futimesat),
    full(N.SYS_fchownat, "fchownat", sys_fchownat),
    full(N.SYS_fchmodat, "fchmodat", sys_fchmodat),
    full(N.SYS_faccessat, "faccessat", sys_faccessat),
    full(N.SYS_utimensat, "utimensat", sys_utimensat),
    full(N.SYS_faccessat2, "faccessat2", sys_faccessat2),
    full(N.SYS_fchmodat2, "fchmodat2", sys_fchmodat2),
]
