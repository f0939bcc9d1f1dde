"""Advisory locks: flock(2), and fcntl(2)'s F_GETLK, F_SETLK, F_SETLKW
and their open-file-description (OFD) forms."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32
from pkg.sentry.vfs.lock import LOCK_EOF
from pkg.sentry.vfs.task_path import get_file

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

# struct flock: l_type, l_whence, l_start, l_len, l_pid.
_FLOCK = struct.Struct("<hh4xqqi4x")
_OFFSET_MAX = (1 << 63) - 1

LOCK_COMMANDS = (
    F.F_GETLK,
    F.F_SETLK,
    F.F_SETLKW,
    F.F_OFD_GETLK,
    F.F_OFD_SETLK,
    F.F_OFD_SETLKW,
)


def _range(
    t: Task, f: FileDescription, whence: int, start: int, length: int
) -> tuple[int, int]:
    """Returns [start, end) of a struct flock (flock_to_posix_lock)."""
    if whence == F.SEEK_SET:
        base = 0
    elif whence == F.SEEK_CUR:
        base = f.tell(t)
    elif whence == F.SEEK_END:
        base = f.stat(t, S.STATX_SIZE).size
    else:
        raise SyscallError(errno.EINVAL)
    if start > _OFFSET_MAX - base:
        raise SyscallError(errno.EOVERFLOW)
    start += base
    if start < 0:
        raise SyscallError(errno.EINVAL)
    if length > 0:
        if length - 1 > _OFFSET_MAX - start:
            raise SyscallError(errno.EOVERFLOW)
        return start, start + length
    if length < 0:
        if start + length < 0:
            raise SyscallError(errno.EINVAL)
        return start + length, start
    return start, LOCK_EOF


def fcntl_lock(t: Task, f: FileDescription, cmd: int, addr: int) -> int:
    """Runs one of LOCK_COMMANDS on f with the struct flock at addr."""
    ltype, whence, start, length, pid = _FLOCK.unpack(t.copy_in(addr, _FLOCK.size))
    ofd = cmd in (F.F_OFD_GETLK, F.F_OFD_SETLK, F.F_OFD_SETLKW)
    if ofd and pid != 0:
        raise SyscallError(errno.EINVAL)
    owner: object = f if ofd else t.fd_table
    locks = f.file_locks()
    if locks is None:
        raise SyscallError(errno.EINVAL)
    if cmd in (F.F_GETLK, F.F_OFD_GETLK):
        if ltype not in (F.F_RDLCK, F.F_WRLCK):
            raise SyscallError(errno.EINVAL)
        lo, hi = _range(t, f, whence, start, length)
        held = locks.test(owner, ltype, lo, hi)
        if held is None:
            out = _FLOCK.pack(F.F_UNLCK, whence, start, length, pid)
        else:
            out = _FLOCK.pack(
                held.type,
                F.SEEK_SET,
                held.start,
                0 if held.end == LOCK_EOF else held.end - held.start,
                -1 if held.ofd else held.pid,
            )
        t.copy_out(addr, out)
        return 0
    if ltype == F.F_RDLCK:
        if not f.readable:
            raise SyscallError(errno.EBADF)
    elif ltype == F.F_WRLCK:
        if not f.writable:
            raise SyscallError(errno.EBADF)
    elif ltype != F.F_UNLCK:
        raise SyscallError(errno.EINVAL)
    lo, hi = _range(t, f, whence, start, length)
    block = cmd in (F.F_SETLKW, F.F_OFD_SETLKW)
    locks.lock(t, owner, t.pid, ltype, lo, hi, block, ofd)
    return 0


def sys_flock(t: Task, args: Args) -> int:
    """flock(2)."""
    fd, op = s32(args[0]), s32(args[1])
    f = get_file(t, fd)
    block = not op & F.LOCK_NB
    op &= ~F.LOCK_NB
    types = {F.LOCK_SH: F.F_RDLCK, F.LOCK_EX: F.F_WRLCK, F.LOCK_UN: F.F_UNLCK}
    ltype = types.get(op)
    if ltype is None:
        raise SyscallError(errno.EINVAL)
    if ltype != F.F_UNLCK and not (f.readable or f.writable):
        raise SyscallError(errno.EBADF)
    locks = f.file_locks()
    if locks is None:
        raise SyscallError(errno.EINVAL)
    if ltype == F.F_UNLCK:
        locks.unlock_bsd(f)
    else:
        locks.lock_bsd(t, f, ltype, block)
    return 0


ENTRIES = [
    full(N.SYS_flock, "flock", sys_flock),
]
