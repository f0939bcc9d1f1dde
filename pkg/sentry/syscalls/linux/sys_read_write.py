"""read(2), write(2), their vectored and positional variants, and
lseek(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.abi.linux.mman import PAGE_SIZE, PROT_WRITE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.sched_stats import account_read, account_write
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, s64, u32
from pkg.sentry.vfs.task_path import get_file

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

# Linux clamps one transfer to MAX_RW_COUNT (INT_MAX rounded down to a page).
MAX_RW_COUNT = 0x7FFFF000
UIO_MAXIOV = 1024
_IOVEC = struct.Struct("<QQ")


def _readable_file(t: Task, fd: int) -> FileDescription:
    f = t.fd_table.get(fd)
    if not f.readable:
        raise SyscallError(errno.EBADF)
    return f


def _writable_file(t: Task, fd: int) -> FileDescription:
    f = t.fd_table.get(fd)
    if not f.writable:
        raise SyscallError(errno.EBADF)
    return f


def _check_buffer(t: Task, addr: int, count: int) -> None:
    # access_ok: the range must lie in the user address space.
    if count and (addr + count > t.mm.max_address or addr + count < addr):
        raise SyscallError(errno.EFAULT)


def _rw_count(t: Task, addr: int, count: int) -> int:
    """Returns the bytes a read or write of count at addr may move: count
    clamped to MAX_RW_COUNT (rw_verify_area), its buffer checked."""
    if s64(count) < 0:
        raise SyscallError(errno.EINVAL)
    count = min(count, MAX_RW_COUNT)
    _check_buffer(t, addr, count)
    return count


def _read_count(t: Task, addr: int, count: int) -> int:
    """Clamps a read to the writable part of its buffer (at least a page,
    so that a bad buffer still fails as the read itself would).

    Linux copies page by page and stops at the first fault; reading only
    what can be copied keeps a huge count from costing the sentry that much
    memory, and leaves unread what could not be delivered.
    """
    if count <= PAGE_SIZE:
        return count
    return max(PAGE_SIZE, t.mm.accessible_length(addr, count, PROT_WRITE))


def _read_total(t: Task, iovs: list[tuple[int, int]]) -> int:
    """Returns the bytes a vectored read can place, as _read_count does."""
    total = 0
    for base, length in iovs:
        n = t.mm.accessible_length(base, length, PROT_WRITE)
        total += n
        if n < length:
            break
    return max(total, min(PAGE_SIZE, sum(n for _, n in iovs)))


def _read_into(
    t: Task, f: FileDescription, addr: int, count: int, offset: int | None
) -> int:
    """Reads up to count bytes of f into addr, at offset or (None) at the
    file offset."""
    count = _rw_count(t, addr, count)
    n = 0
    try:
        if count == 0:
            return 0
        count = _read_count(t, addr, count)
        data = f.read(t, count) if offset is None else f.pread(t, count, offset)
        n = t.mm.copy_out_partial(addr, data)
        if n == 0 and data:
            raise SyscallError(errno.EFAULT)
        return n
    finally:
        # Every read past the checks counts, failed or not (vfs_read).
        account_read(t, n)


def _write_from(
    t: Task, f: FileDescription, addr: int, count: int, offset: int | None
) -> int:
    """Writes up to count bytes at addr to f, at offset or (None) at the
    file offset."""
    count = _rw_count(t, addr, count)
    n = 0
    try:
        if count == 0:
            return 0
        data = t.mm.copy_in_partial(addr, count)
        if not data:
            raise SyscallError(errno.EFAULT)
        n = f.write(t, data) if offset is None else f.pwrite(t, data, offset)
        return n
    finally:
        account_write(t, n)


def sys_read(t: Task, args: Args) -> int:
    """read(2)."""
    fd, addr, count = s32(args[0]), args[1], args[2]
    return _read_into(t, _readable_file(t, fd), addr, count, None)


def sys_write(t: Task, args: Args) -> int:
    """write(2)."""
    fd, addr, count = s32(args[0]), args[1], args[2]
    return _write_from(t, _writable_file(t, fd), addr, count, None)


def sys_pread64(t: Task, args: Args) -> int:
    """pread64(2)."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], s64(args[3])
    # ksys_pread64 rejects the offset before looking at the descriptor.
    if offset < 0:
        raise SyscallError(errno.EINVAL)
    return _read_into(t, _readable_file(t, fd), addr, count, offset)


def sys_pwrite64(t: Task, args: Args) -> int:
    """pwrite64(2)."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], s64(args[3])
    if offset < 0:
        raise SyscallError(errno.EINVAL)
    return _write_from(t, _writable_file(t, fd), addr, count, offset)


def read_iovecs(t: Task, addr: int, count: int) -> list[tuple[int, int]]:
    """Reads and validates an iovec array (import_iovec)."""
    if s32(count) < 0 or count > UIO_MAXIOV:
        raise SyscallError(errno.EINVAL)
    if count == 0:
        return []
    raw = t.copy_in(addr, count * _IOVEC.size)
    iovs = []
    total = 0
    for i in range(count):
        base, length = _IOVEC.unpack_from(raw, i * _IOVEC.size)
        if s64(length) < 0:
            raise SyscallError(errno.EINVAL)
        # The total is clamped to MAX_RW_COUNT; later vectors shrink.
        length = min(length, MAX_RW_COUNT - total)
        _check_buffer(t, base, length)
        total += length
        iovs.append((base, length))
    return iovs


def scatter(t: Task, iovs: list[tuple[int, int]], data: bytes) -> int:
    """Copies data out across iovs; returns the bytes placed."""
    pos = 0
    for base, length in iovs:
        if pos >= len(data):
            break
        chunk = data[pos : pos + length]
        n = t.mm.copy_out_partial(base, chunk)
        pos += n
        if n < len(chunk):
            if pos == 0:
                raise SyscallError(errno.EFAULT)
            break
    return pos


def gather(t: Task, iovs: list[tuple[int, int]]) -> bytes:
    """Copies in the bytes the iovs describe, stopping at a bad one."""
    parts = []
    for base, length in iovs:
        chunk = t.mm.copy_in_partial(base, length)
        parts.append(chunk)
        if len(chunk) < length:
            if not any(parts):
                raise SyscallError(errno.EFAULT)
            break
    return b"".join(parts)


def _readv_into(
    t: Task, f: FileDescription, addr: int, count: int, offset: int | None
) -> int:
    """Reads into the count iovecs at addr from f, at offset or (None) at the
    file offset."""
    iovs = read_iovecs(t, addr, count)
    n = 0
    try:
        if not any(length for _, length in iovs):
            return 0
        total = _read_total(t, iovs)
        data = f.read(t, total) if offset is None else f.pread(t, total, offset)
        n = scatter(t, iovs, data)
        return n
    finally:
        account_read(t, n)


def _writev_from(
    t: Task,
    f: FileDescription,
    addr: int,
    count: int,
    offset: int | None,
    append: bool = False,
) -> int:
    """Writes the count iovecs at addr to f, at offset or (None) at the file
    offset; append (RWF_APPEND) writes at the end instead."""
    iovs = read_iovecs(t, addr, count)
    n = 0
    try:
        if sum(length for _, length in iovs) == 0:
            return 0
        data = gather(t, iovs)
        if append:
            offset = f.stat(t, S.STATX_SIZE).size
        n = f.write(t, data) if offset is None else f.pwrite(t, data, offset)
        return n
    finally:
        account_write(t, n)


def _pos(low: int, high: int) -> int:
    """Returns the signed file position that preadv(2) and its kin take
    split in two registers (pos_from_hilo)."""
    return s64(low | (high << 32) & ((1 << 64) - 1))


def sys_readv(t: Task, args: Args) -> int:
    """readv(2)."""
    fd, addr, count = s32(args[0]), args[1], args[2]
    return _readv_into(t, _readable_file(t, fd), addr, count, None)


def sys_writev(t: Task, args: Args) -> int:
    """writev(2)."""
    fd, addr, count = s32(args[0]), args[1], args[2]
    return _writev_from(t, _writable_file(t, fd), addr, count, None)


def sys_preadv(t: Task, args: Args) -> int:
    """preadv(2); the offset arrives split in two registers."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], _pos(args[3], args[4])
    f = _readable_file(t, fd)
    if offset < 0:
        raise SyscallError(errno.EINVAL)
    return _readv_into(t, f, addr, count, offset)


def sys_pwritev(t: Task, args: Args) -> int:
    """pwritev(2)."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], _pos(args[3], args[4])
    f = _writable_file(t, fd)
    if offset < 0:
        raise SyscallError(errno.EINVAL)
    return _writev_from(t, f, addr, count, offset)


# preadv2/pwritev2 flags (RWF_*).
RWF_HIPRI = 0x1
RWF_DSYNC = 0x2
RWF_SYNC = 0x4
RWF_NOWAIT = 0x8
RWF_APPEND = 0x10
RWF_NOAPPEND = 0x20
_RWF_SUPPORTED = (
    RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND | RWF_NOAPPEND
)


def _v2_offset(offset: int) -> int | None:
    """Checks preadv2/pwritev2's offset (after the descriptor); returns it,
    or None for -1 (the file offset)."""
    if offset < -1:
        raise SyscallError(errno.EINVAL)
    return None if offset == -1 else offset


def sys_preadv2(t: Task, args: Args) -> int:
    """preadv2(2): an offset of -1 reads at the file offset."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], _pos(args[3], args[4])
    flags = s32(args[5])
    if flags & ~_RWF_SUPPORTED:
        raise SyscallError(errno.EOPNOTSUPP)
    f = _readable_file(t, fd)
    return _readv_into(t, f, addr, count, _v2_offset(offset))


def sys_pwritev2(t: Task, args: Args) -> int:
    """pwritev2(2): an offset of -1 writes at the file offset; RWF_APPEND
    writes at the end."""
    fd, addr, count, offset = s32(args[0]), args[1], args[2], _pos(args[3], args[4])
    flags = s32(args[5])
    if flags & ~_RWF_SUPPORTED:
        raise SyscallError(errno.EOPNOTSUPP)
    f = _writable_file(t, fd)
    pos = _v2_offset(offset)
    return _writev_from(t, f, addr, count, pos, append=bool(flags & RWF_APPEND))


def sys_lseek(t: Task, args: Args) -> int:
    """lseek(2)."""
    fd, offset, whence = s32(args[0]), s64(args[1]), u32(args[2])
    f = get_file(t, fd)
    if whence > F.SEEK_HOLE:
        raise SyscallError(errno.EINVAL)
    return f.seek(t, offset, whence)


ENTRIES = [
    full(N.SYS_read, "read", sys_read),
    full(N.SYS_write, "write", sys_write),
    full(N.SYS_pread64, "pread64", sys_pread64),
    full(N.SYS_pwrite64, "pwrite64", sys_pwrite64),
    full(N.SYS_readv, "readv", sys_readv),
    full(N.SYS_writev, "writev", sys_writev),
    full(N.SYS_preadv, "preadv", sys_preadv),
    full(N.SYS_pwritev, "pwritev", sys_pwritev),
    full(N.SYS_lseek, "lseek", sys_lseek),
    partial(
        N.SYS_preadv2,
        "preadv2",
        sys_preadv2,
        "RWF_NOWAIT does not make a pipe read non-blocking",
    ),
    partial(
        N.SYS_pwritev2,
        "pwritev2",
        sys_pwritev2,
        "RWF_NOWAIT does not make a pipe write non-blocking; RWF_APPEND is not atomic",
    ),
]
