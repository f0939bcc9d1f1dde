"""Moving data between files in the kernel: sendfile(2), splice(2),
tee(2), vmsplice(2), copy_file_range(2).

Data is moved through the sentry (read, then write). Input is consumed only
once the output has taken it: a pipe is peeked and then drained by what was
written, and a seekable file is read at its offset, which then advances by
what was written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipefs import PipeFD
from pkg.sentry.kernel.sched_stats import account_copy
from pkg.sentry.syscalls.linux.sys_read_write import gather, read_iovecs, scatter
from pkg.sentry.syscalls.syscall import Args, full, s32, s64, u32
from pkg.sentry.vfs.task_path import get_file

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

MAX_RW_COUNT = 0x7FFFF000
# How much one step moves.
_CHUNK = 1 << 16
_SPLICE_F_ALL = (
    F.SPLICE_F_MOVE | F.SPLICE_F_NONBLOCK | F.SPLICE_F_MORE | F.SPLICE_F_GIFT
)


def _read_offset(t: Task, addr: int) -> int | None:
    if addr == 0:
        return None
    off = s64(t.mm.read_u64(addr))
    if off < 0:
        raise SyscallError(errno.EINVAL)
    return off


def seekable(t: Task, f: FileDescription) -> bool:
    """Reports whether f reads and writes at offsets (a pipe, socket or
    other stream does not)."""
    try:
        f.pread(t, 0, 0)
    except SyscallError as e:
        if e.errno == errno.ESPIPE:
            return False
        raise
    return True


def _write_out(t: Task, out: FileDescription, data: bytes, off: int | None) -> int:
    return out.write(t, data) if off is None else out.pwrite(t, data, off)


def _copy_from_file(
    t: Task,
    src: FileDescription,
    src_off: int | None,
    dst: FileDescription,
    dst_off: int | None,
    count: int,
) -> tuple[int, int | None, int | None]:
    """Moves up to count bytes from a file to dst. Returns (moved, new
    src_off, new dst_off); src's own offset advances when src_off is
    None."""
    total = 0
    positioned = seekable(t, src)
    while total < count:
        want = min(_CHUNK, count - total)
        if src_off is not None:
            data = src.pread(t, want, src_off)
        elif positioned:
            data = src.pread(t, want, src.tell(t))
        else:
            data = src.read(t, want)
        if not data:
            break
        try:
            n = _write_out(t, dst, data, dst_off)
        except SyscallError:
            if total:
                break
            raise
        total += n
        if src_off is not None:
            src_off += n
        elif positioned:
            src.seek(t, src.tell(t) + n, F.SEEK_SET)
        if dst_off is not None:
            dst_off += n
        # A short read ends the copy, as in splice_direct_to_actor: what a
        # terminal or socket has now is all the caller gets, not a wait
        # for the rest of count (busybox cat sendfiles from its stdin).
        if n < len(data) or len(data) < want:
            break
    return total, src_off, dst_off


def sys_sendfile(t: Task, args: Args) -> int:
    """sendfile(2)."""
    out_fd, in_fd, off_addr, count = s32(args[0]), s32(args[1]), args[2], args[3]
    src = get_file(t, in_fd)
    if not src.readable:
        raise SyscallError(errno.EBADF)
    dst = get_file(t, out_fd)
    if not dst.writable:
        raise SyscallError(errno.EBADF)
    if dst.flags & F.O_APPEND:
        raise SyscallError(errno.EINVAL)
    if s64(count) < 0:
        raise SyscallError(errno.EINVAL)
    count = min(count, MAX_RW_COUNT)
    off = _read_offset(t, off_addr)
    if off is not None and not seekable(t, src):
        raise SyscallError(errno.ESPIPE)
    total = 0
    try:
        if count == 0:
            return 0
        if isinstance(src, PipeFD):
            total = _splice_from_pipe(t, src, dst, None, count, src.nonblocking)
        else:
            total, off, _ = _copy_from_file(t, src, off, dst, None, count)
    finally:
        # Failed or not, as do_sendfile counts (/proc/pid/io).
        account_copy(t, total)
    if off_addr:
        t.mm.write_i64(off_addr, off if off is not None else 0)
    return total


def _splice_from_pipe(
    t: Task,
    src: PipeFD,
    dst: FileDescription,
    dst_off: int | None,
    count: int,
    nonblock: bool,
) -> int:
    data = src.pipe.peek(t, count, nonblock)
    if not data:
        return 0
    n = _write_out(t, dst, data, dst_off)
    src.pipe.consume(n)
    return n


def sys_splice(t: Task, args: Args) -> int:
    """splice(2): one side must be a pipe."""
    fd_in, off_in_addr, fd_out, off_out_addr = (
        s32(args[0]),
        args[1],
        s32(args[2]),
        args[3],
    )
    length, flags = args[4], u32(args[5])
    if length == 0:
        return 0
    if flags & ~_SPLICE_F_ALL:
        raise SyscallError(errno.EINVAL)
    src = get_file(t, fd_in)
    dst = get_file(t, fd_out)
    if not src.readable or not dst.writable:
        raise SyscallError(errno.EBADF)
    length = min(length, MAX_RW_COUNT)
    nb_flag = bool(flags & F.SPLICE_F_NONBLOCK)
    if isinstance(src, PipeFD):
        if off_in_addr:
            raise SyscallError(errno.ESPIPE)
        if isinstance(dst, PipeFD):
            if off_out_addr:
                raise SyscallError(errno.ESPIPE)
            if src.pipe is dst.pipe:
                raise SyscallError(errno.EINVAL)
            data = src.pipe.peek(t, length, nb_flag or src.nonblocking)
            if not data:
                return 0
            n = dst.pipe.write(t, data, nb_flag or dst.nonblocking)
            src.pipe.consume(n)
            return n
        off_out = _read_offset(t, off_out_addr)
        if off_out is not None:
            if dst.flags & F.O_APPEND:
                raise SyscallError(errno.EINVAL)
            if not seekable(t, dst):
                raise SyscallError(errno.ESPIPE)
        n = _splice_from_pipe(t, src, dst, off_out, length, nb_flag or src.nonblocking)
        if off_out is not None:
            t.mm.write_i64(off_out_addr, off_out + n)
        return n
    if isinstance(dst, PipeFD):
        if off_out_addr:
            raise SyscallError(errno.ESPIPE)
        off_in = _read_offset(t, off_in_addr)
        if off_in is not None and not seekable(t, src):
            raise SyscallError(errno.ESPIPE)
        want = min(length, dst.pipe.capacity)
        nonblock = nb_flag or dst.nonblocking
        if nonblock:
            free = dst.pipe.capacity - dst.pipe.queued()
            if free <= 0:
                raise SyscallError(errno.EAGAIN)
            want = min(want, free)
        if off_in is not None:
            data = src.pread(t, want, off_in)
        elif seekable(t, src):
            data = src.pread(t, want, src.tell(t))
        else:
            data = src.read(t, want)
        if not data:
            return 0
        n = dst.pipe.write(t, data, nonblock)
        if off_in is not None:
            t.mm.write_i64(off_in_addr, off_in + n)
        elif seekable(t, src):
            src.seek(t, src.tell(t) + n, F.SEEK_SET)
        return n
    raise SyscallError(errno.EINVAL)


def sys_tee(t: Task, args: Args) -> int:
    """tee(2)."""
    fd_in, fd_out, length, flags = s32(args[0]), s32(args[1]), args[2], u32(args[3])
    if flags & ~_SPLICE_F_ALL:
        raise SyscallError(errno.EINVAL)
    if length == 0:
        return 0
    src = get_file(t, fd_in)
    dst = get_file(t, fd_out)
    if not isinstance(src, PipeFD) or not isinstance(dst, PipeFD):
        raise SyscallError(errno.EINVAL)
    if not src.readable or not dst.writable:
        raise SyscallError(errno.EBADF)
    if src.pipe is dst.pipe:
        raise SyscallError(errno.EINVAL)
    nb = bool(flags & F.SPLICE_F_NONBLOCK)
    data = src.pipe.peek(t, min(length, MAX_RW_COUNT), nb or src.nonblocking)
    if not data:
        return 0
    return dst.pipe.write(t, data, nb or dst.nonblocking)


def sys_vmsplice(t: Task, args: Args) -> int:
    """vmsplice(2): the iovecs' bytes into a pipe opened for writing, or
    out of one opened for reading. Linux lends the pages themselves; here
    they are copied, which a program cannot tell apart except by timing
    (and SPLICE_F_GIFT has nothing to give)."""
    fd, iov_addr, count, flags = s32(args[0]), args[1], args[2], u32(args[3])
    if flags & ~_SPLICE_F_ALL:
        raise SyscallError(errno.EINVAL)
    f = get_file(t, fd)
    if not f.writable and not f.readable:
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, iov_addr, count)
    total = sum(n for _, n in iovs)
    if not total:
        return 0
    if not isinstance(f, PipeFD):
        raise SyscallError(errno.EBADF)
    nonblock = bool(flags & F.SPLICE_F_NONBLOCK)
    if f.writable:
        # Waits only for some room, then takes what fits, as the pages
        # of a splice go in one by one.
        return f.pipe.write(t, gather(t, iovs), nonblock or f.nonblocking, partial=True)
    return scatter(t, iovs, f.pipe.read(t, total, nonblock))


def sys_copy_file_range(t: Task, args: Args) -> int:
    """copy_file_range(2)."""
    fd_in, off_in_addr, fd_out, off_out_addr = (
        s32(args[0]),
        args[1],
        s32(args[2]),
        args[3],
    )
    length, flags = args[4], u32(args[5])
    if flags:
        raise SyscallError(errno.EINVAL)
    src = get_file(t, fd_in)
    dst = get_file(t, fd_out)
    if not src.readable or not dst.writable or dst.flags & F.O_APPEND:
        raise SyscallError(errno.EBADF)
    st_in = src.stat(t, S.STATX_BASIC_STATS)
    st_out = dst.stat(t, S.STATX_BASIC_STATS)
    for st in (st_in, st_out):
        if S.S_ISDIR(st.mode):
            raise SyscallError(errno.EISDIR)
        if not S.S_ISREG(st.mode):
            raise SyscallError(errno.EINVAL)
    off_in = _read_offset(t, off_in_addr)
    off_out = _read_offset(t, off_out_addr)
    length = min(length, MAX_RW_COUNT)
    start_in = src.tell(t) if off_in is None else off_in
    start_out = dst.tell(t) if off_out is None else off_out
    same = (st_in.ino, st_in.dev_major, st_in.dev_minor) == (
        st_out.ino,
        st_out.dev_major,
        st_out.dev_minor,
    )
    if same and start_in < start_out + length and start_out < start_in + length:
        raise SyscallError(errno.EINVAL)
    if (
        src.vd is not None
        and dst.vd is not None
        and src.vd.mount.fs.fs_type is not dst.vd.mount.fs.fs_type
    ):
        raise SyscallError(errno.EXDEV)
    if length == 0:
        return 0
    total = 0
    try:
        total, _, _ = _copy_from_file(t, src, start_in, dst, start_out, length)
    finally:
        account_copy(t, total)
    if off_in is None:
        src.seek(t, start_in + total, F.SEEK_SET)
    else:
        t.mm.write_i64(off_in_addr, start_in + total)
    if off_out is None:
        dst.seek(t, start_out + total, F.SEEK_SET)
    else:
        t.mm.write_i64(off_out_addr, start_out + total)
    return total


ENTRIES = [
    full(N.SYS_sendfile, "sendfile", sys_sendfile),
    full(N.SYS_splice, "splice", sys_splice),
    full(N.SYS_tee, "tee", sys_tee),
    full(N.SYS_vmsplice, "vmsplice", sys_vmsplice),
    full(N.SYS_copy_file_range, "copy_file_range", sys_copy_file_range),
]
