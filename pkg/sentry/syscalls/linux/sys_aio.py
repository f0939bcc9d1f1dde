"""Linux native asynchronous I/O: io_setup(2), io_destroy(2),
io_submit(2), io_cancel(2), io_getevents(2), io_pgetevents(2).

Requests run to completion inside io_submit and their events land in the
context's ring (pkg/sentry/mm/aio.py). That is what Linux does for
buffered files too: only O_DIRECT I/O on some filesystems and
IOCB_CMD_POLL complete later. So io_cancel never finds a request in
flight, and io_getevents waits only for what other threads submit.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.eventfd.eventfd import EventFD
from pkg.sentry.kernel.waiter import EVENT_IN, Entry
from pkg.sentry.mm import aio
from pkg.sentry.syscalls.linux.sys_poll import (
    read_timeout,
    restore_saved_sigmask_unless,
    set_user_sigmask,
)
from pkg.sentry.syscalls.linux.sys_read_write import (
    RWF_APPEND,
    gather,
    read_iovecs,
    scatter,
)
from pkg.sentry.syscalls.linux.sys_splice import seekable
from pkg.sentry.syscalls.syscall import Args, partial, s64

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

IOCB_CMD_PREAD = 0
IOCB_CMD_PWRITE = 1
IOCB_CMD_FSYNC = 2
IOCB_CMD_FDSYNC = 3
IOCB_CMD_POLL = 5
IOCB_CMD_PREADV = 7
IOCB_CMD_PWRITEV = 8
IOCB_FLAG_RESFD = 1 << 0
IOCB_FLAG_IOPRIO = 1 << 1
# The RWF_* flags aio honours; RWF_NOWAIT is refused as for a file
# without FMODE_NOWAIT (TODO(#5)).
_RWF_AIO = 0x1 | 0x2 | 0x4 | RWF_APPEND | 0x20

# struct iocb: data, key, rw_flags, lio_opcode, reqprio, fildes, buf,
# nbytes, offset, reserved2, flags, resfd.
_IOCB = struct.Struct("<QIiHhIQQqQII")
_KEY_OFFSET = 8
# struct __aio_sigset: sigmask pointer, sigsetsize.
_AIO_SIGSET = struct.Struct("<QQ")
_ERESTART = (
    errno.ERESTARTSYS,
    errno.ERESTARTNOINTR,
    errno.ERESTARTNOHAND,
    errno.ERESTART_RESTARTBLOCK,
)


def sys_io_setup(t: Task, args: Args) -> int:
    """io_setup(2)."""
    nr_events, ctx_addr = s64(args[0]), args[1]
    if t.mm.read_u64(ctx_addr) != 0:
        raise SyscallError(errno.EINVAL)
    if nr_events <= 0 or nr_events >= 1 << 31:
        raise SyscallError(errno.EINVAL)
    ctx = aio.setup(t.mm, nr_events, t.kernel.num_cpus)
    try:
        t.mm.write_u64(ctx_addr, ctx.addr)
    except SyscallError:
        aio.destroy(t.mm, ctx.addr)
        raise
    return 0


def sys_io_destroy(t: Task, args: Args) -> int:
    """io_destroy(2)."""
    aio.destroy(t.mm, args[0])
    return 0


def _buffers(t: Task, op: int, buf: int, nbytes: int) -> list[tuple[int, int]]:
    """Returns the (address, length) ranges of a request: its iovecs for
    the vectored commands (copied in now, as aio_setup_rw does)."""
    if op in (IOCB_CMD_PREADV, IOCB_CMD_PWRITEV):
        return read_iovecs(t, buf, nbytes)
    return [(buf, nbytes)]


def _run(
    t: Task, f: FileDescription, op: int, iovs: list[tuple[int, int]], pos: int, rw: int
) -> int:
    """Performs a read or write request; returns its result, a negative
    errno when it fails."""
    total = sum(n for _, n in iovs)
    try:
        positioned = seekable(t, f)
        if op in (IOCB_CMD_PREAD, IOCB_CMD_PREADV):
            data = f.pread(t, total, pos) if positioned else f.read(t, total)
            return scatter(t, iovs, data) if data else 0
        data = gather(t, iovs)
        if rw & RWF_APPEND:
            return f.write(t, data)
        return f.pwrite(t, data, pos) if positioned else f.write(t, data)
    except SyscallError as e:
        return -(errno.EINTR if e.errno in _ERESTART else e.errno)


def _submit_one(t: Task, ctx: aio.AIOContext, iocb_addr: int) -> None:
    """Checks, performs and completes one request (io_submit_one).

    Raises:
        SyscallError: what the submission fails with; the request then
            leaves no event.
    """
    data, _, rw, op, prio, fd, buf, nbytes, offset, reserved2, flags, resfd = (
        _IOCB.unpack(t.copy_in(iocb_addr, _IOCB.size))
    )
    if reserved2 or nbytes >= 1 << 63:
        raise SyscallError(errno.EINVAL)
    ctx.reserve()
    try:
        f = t.fd_table.get(fd)
        event_fd = None
        if flags & IOCB_FLAG_RESFD:
            event_fd = t.fd_table.get(resfd)
            if not isinstance(event_fd, EventFD):
                raise SyscallError(errno.EINVAL)
        # The key of a live request is 0 (KIOCB_KEY).
        t.mm.write_u32(iocb_addr + _KEY_OFFSET, 0)
        if op in (IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC):
            if buf or offset or nbytes or rw:
                raise SyscallError(errno.EINVAL)
            try:
                f.sync(t)
                res = 0
            except SyscallError as e:
                res = -e.errno
        elif op in (IOCB_CMD_PREAD, IOCB_CMD_PREADV, IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV):
            if flags & IOCB_FLAG_IOPRIO and prio >> 13 not in (0, 1, 2, 3):
                raise SyscallError(errno.EINVAL)
            if rw & ~_RWF_AIO:
                raise SyscallError(errno.EOPNOTSUPP)
            reading = op in (IOCB_CMD_PREAD, IOCB_CMD_PREADV)
            if not (f.readable if reading else f.writable):
                raise SyscallError(errno.EBADF)
            iovs = _buffers(t, op, buf, nbytes)
            if offset < 0 and seekable(t, f):
                raise SyscallError(errno.EINVAL)
            res = _run(t, f, op, iovs, offset, rw)
        else:
            # TODO(#5): IOCB_CMD_POLL; Linux gives EINVAL for the rest
            # (IOCB_CMD_NOOP included).
            raise SyscallError(errno.EINVAL)
    except SyscallError:
        ctx.unreserve()
        raise
    ctx.complete(t.mm, (data, iocb_addr, res, 0))
    if event_fd is not None:
        event_fd.kernel_add()


def sys_io_submit(t: Task, args: Args) -> int:
    """io_submit(2): returns how many requests were submitted, or the
    error of the first if none was."""
    ctx_id, nr, addr = args[0], s64(args[1]), args[2]
    if nr < 0:
        raise SyscallError(errno.EINVAL)
    ctx = aio.lookup(t.mm, ctx_id)
    nr = min(nr, ctx.nr)
    done = 0
    for i in range(nr):
        try:
            _submit_one(t, ctx, t.mm.read_u64(addr + 8 * i))
        except SyscallError:
            if done:
                return done
            raise
        done += 1
    return done


def sys_io_cancel(t: Task, args: Args) -> int:
    """io_cancel(2): every request has completed by the time io_submit
    returns, so there is never one to cancel."""
    ctx_id, iocb_addr = args[0], args[1]
    key = t.mm.read_u32(iocb_addr + _KEY_OFFSET)
    if key != 0:
        raise SyscallError(errno.EINVAL)
    aio.lookup(t.mm, ctx_id)
    raise SyscallError(errno.EINVAL)


def _getevents(
    t: Task, ctx_id: int, min_nr: int, nr: int, addr: int, ts_addr: int
) -> int:
    """read_events: waits until min_nr events are there or the timeout
    passes, then takes up to nr."""
    ctx = aio.lookup(t.mm, ctx_id)
    if min_nr < 0 or nr < 0 or min_nr > nr:
        raise SyscallError(errno.EINVAL)
    deadline, zero = read_timeout(t, ts_addr)
    got: list[bytes] = []
    entry = Entry(lambda _m: t.wake(), EVENT_IN)
    ctx.queue.register(entry)
    try:
        while True:
            got += ctx.take(t.mm, nr - len(got))
            if len(got) >= min_nr or zero or ctx.dead:
                break
            try:
                t.block(deadline)
            except SyscallError as e:
                if e.errno == errno.ETIMEDOUT:
                    break
                if got:
                    break
                raise SyscallError(errno.EINTR) from None
    finally:
        ctx.queue.unregister(entry)
    if got:
        t.copy_out(addr, b"".join(got))
    return len(got)


def sys_io_getevents(t: Task, args: Args) -> int:
    """io_getevents(2)."""
    return _getevents(t, args[0], s64(args[1]), s64(args[2]), args[3], args[4])


def sys_io_pgetevents(t: Task, args: Args) -> int:
    """io_pgetevents(2): io_getevents with a signal mask for the wait."""
    sig_addr = args[5]
    mask_addr = mask_size = 0
    if sig_addr:
        mask_addr, mask_size = _AIO_SIGSET.unpack(t.copy_in(sig_addr, _AIO_SIGSET.size))
    set_user_sigmask(t, mask_addr, mask_size)
    try:
        ret = _getevents(t, args[0], s64(args[1]), s64(args[2]), args[3], args[4])
    except SyscallError as e:
        ret = -e.errno
    restore_saved_sigmask_unless(t, ret == -errno.EINTR)
    if ret < 0:
        raise SyscallError(-ret)
    return ret


ENTRIES = [
    partial(
        N.SYS_io_setup,
        "io_setup",
        sys_io_setup,
        "requests complete inside io_submit, as buffered I/O does on Linux",
    ),
    partial(N.SYS_io_destroy, "io_destroy", sys_io_destroy, "nothing to wait for"),
    partial(
        N.SYS_io_submit,
        "io_submit",
        sys_io_submit,
        "IOCB_CMD_POLL and RWF_NOWAIT are refused (EINVAL, EOPNOTSUPP)",
    ),
    partial(
        N.SYS_io_cancel,
        "io_cancel",
        sys_io_cancel,
        "no request is ever in flight to cancel",
    ),
    partial(N.SYS_io_getevents, "io_getevents", sys_io_getevents, "see io_submit"),
    partial(N.SYS_io_pgetevents, "io_pgetevents", sys_io_pgetevents, "see io_submit"),
]
