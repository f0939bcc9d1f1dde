"""POSIX message queues: mq_open(2), mq_unlink(2), mq_timedsend(2),
mq_timedreceive(2), mq_notify(2), mq_getsetattr(2).

The queues are files of the IPC namespace's mqueue filesystem
(pkg/sentry/fsimpl/mqueue); libc strips the leading slash of a name before
the call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import ipc as I
from pkg.abi.linux import signal as S
from pkg.abi.linux import stat as ST
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.mqueue.mqueue import MqueueFD, mqueue_filesystem
from pkg.sentry.fsimpl.mqueue.queue import Notification
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_thread_group
from pkg.sentry.socket.netlink import NetlinkSocket
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.linux.sys_time import read_timespec, to_monotonic_ns
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# struct sigevent's head: sigev_value, sigev_signo, sigev_notify.
_SIGEVENT = struct.Struct("<Qii")
_PATH_MAX = 4096


def _queue_fd(t: Task, fd: int) -> MqueueFD:
    f = t.fd_table.get(fd)
    if not isinstance(f, MqueueFD):
        raise SyscallError(errno.EBADF)
    return f


def _deadline(t: Task, addr: int) -> float | None:
    # An absolute CLOCK_REALTIME time, checked before anything else.
    if not addr:
        return None
    abs_ns = read_timespec(t, addr)
    return to_monotonic_ns(t, T.CLOCK_REALTIME, abs_ns) / 1e9


def sys_mq_open(t: Task, args: Args) -> int:
    """mq_open(2). Queue descriptors are always close-on-exec, as in
    Linux."""
    name_addr, oflag, mode, attr_addr = args[0], s32(args[1]), u32(args[2]), args[3]
    name = t.copy_in_string(name_addr, _PATH_MAX)
    attr = None
    if attr_addr:
        _, maxmsg, msgsize, _ = I.MQ_ATTR.unpack(t.copy_in(attr_addr, I.MQ_ATTR.size))
        attr = (maxmsg, msgsize)
    fs = mqueue_filesystem(t)
    f = fs.mq_open(
        t,
        name,
        oflag & (F.O_ACCMODE | F.O_CREAT | F.O_EXCL | F.O_NONBLOCK),
        mode & ST.S_IALLUGO & ~t.fs.umask,
        attr,
    )
    try:
        return t.fd_table.new_fd(f, True, 0, fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def sys_mq_unlink(t: Task, args: Args) -> int:
    """mq_unlink(2)."""
    name = t.copy_in_string(args[0], _PATH_MAX)
    mqueue_filesystem(t).mq_unlink(t, name)
    return 0


def sys_mq_timedsend(t: Task, args: Args) -> int:
    """mq_timedsend(2)."""
    fd, ptr, length, prio = s32(args[0]), args[1], args[2], u32(args[3])
    deadline = _deadline(t, args[4])
    if prio >= I.MQ_PRIO_MAX:
        raise SyscallError(errno.EINVAL)
    f = _queue_fd(t, fd)
    if not f.writable:
        raise SyscallError(errno.EBADF)
    mq = f.mq
    if length > mq.msgsize:
        raise SyscallError(errno.EMSGSIZE)
    data = t.copy_in(ptr, length) if length else b""
    mq.send(t, data, prio, f.nonblocking, deadline)
    return 0


def sys_mq_timedreceive(t: Task, args: Args) -> int:
    """mq_timedreceive(2). A message that cannot be copied out is lost, as
    in Linux."""
    fd, ptr, length, prio_addr = s32(args[0]), args[1], args[2], args[3]
    deadline = _deadline(t, args[4])
    f = _queue_fd(t, fd)
    if not f.readable:
        raise SyscallError(errno.EBADF)
    mq = f.mq
    if length < mq.msgsize:
        raise SyscallError(errno.EMSGSIZE)
    data, prio = mq.receive(t, f.nonblocking, deadline)
    if data:
        t.copy_out(ptr, data)
    if prio_addr:
        t.mm.write_u32(prio_addr, prio)
    return len(data)


def _signal_notifier(t: Task, signo: int, value: int) -> Callable[[int, int], None]:
    tg = t.tg

    def deliver(pid: int, uid: int) -> None:
        # A signal number of 0 registers without sending anything.
        if signo and not tg.exiting:
            send_to_thread_group(
                tg,
                SignalInfo(signo=signo, code=S.SI_MESGQ, pid=pid, uid=uid, value=value),
            )

    return deliver


def sys_mq_notify(t: Task, args: Args) -> int:
    """mq_notify(2)."""
    fd, sev_addr = s32(args[0]), args[1]
    n = None
    if sev_addr:
        value, signo, notify = _SIGEVENT.unpack(t.copy_in(sev_addr, _SIGEVENT.size))
        if notify not in (T.SIGEV_NONE, T.SIGEV_SIGNAL, T.SIGEV_THREAD):
            raise SyscallError(errno.EINVAL)
        if notify == T.SIGEV_SIGNAL and not 0 <= signo <= S.SIGRTMAX:
            raise SyscallError(errno.EINVAL)
        if notify == T.SIGEV_THREAD:
            n = _thread_notification(t, value, signo)
        else:
            n = Notification(
                owner_pid=t.pid,
                owner=t.tg,
                owner_files=t.fd_table,
                notify=notify,
                signo=signo,
                deliver=_signal_notifier(t, signo, value)
                if notify == T.SIGEV_SIGNAL
                else None,
            )
    try:
        f = _queue_fd(t, fd)
        f.mq.set_notification(n, t.tg)
    except SyscallError:
        if n is not None and n.removed is not None:
            n.removed(True)
        raise
    return 0


def _thread_notification(t: Task, cookie_addr: int, sock_fd: int) -> Notification:
    """Makes a SIGEV_THREAD registration: libc's helper thread waits on a
    netlink socket, which gets the cookie with its last byte set to
    NOTIFY_WOKENUP or NOTIFY_REMOVED (ipc/mqueue.c)."""
    cookie = t.copy_in(cookie_addr, I.NOTIFY_COOKIE_LEN)
    sock = t.fd_table.get(sock_fd)
    if not isinstance(sock, NetlinkSocket):
        # TODO(#5): netlink_getsockbyfilp also accepts other netlink
        # protocols; only NETLINK_ROUTE sockets exist here.
        raise SyscallError(errno.ENOTSOCK)
    sock.inc_ref()
    done = False

    def finish(code: int, quiet: bool = False) -> None:
        nonlocal done
        if done:
            return
        done = True
        if not quiet:
            sock.deliver(cookie[:-1] + bytes([code]))
        sock.dec_ref()

    return Notification(
        owner_pid=t.pid,
        owner=t.tg,
        owner_files=t.fd_table,
        notify=T.SIGEV_THREAD,
        signo=0,
        deliver=lambda pid, uid: finish(I.NOTIFY_WOKENUP),
        removed=lambda quiet=False: finish(I.NOTIFY_REMOVED, quiet),
    )


def sys_mq_getsetattr(t: Task, args: Args) -> int:
    """mq_getsetattr(2)."""
    fd, new_addr, old_addr = s32(args[0]), args[1], args[2]
    new_flags = None
    if new_addr:
        new_flags = I.MQ_ATTR.unpack(t.copy_in(new_addr, I.MQ_ATTR.size))[0]
        if new_flags & ~F.O_NONBLOCK:
            raise SyscallError(errno.EINVAL)
    f = _queue_fd(t, fd)
    mq = f.mq
    old = I.MQ_ATTR.pack(f.flags & F.O_NONBLOCK, mq.maxmsg, mq.msgsize, mq.curmsgs)
    if new_flags is not None:
        f.flags = (f.flags & ~F.O_NONBLOCK) | new_flags
    if old_addr:
        t.copy_out(old_addr, old)
    return 0


ENTRIES = [
    full(N.SYS_mq_open, "mq_open", sys_mq_open),
    full(N.SYS_mq_unlink, "mq_unlink", sys_mq_unlink),
    full(N.SYS_mq_timedsend, "mq_timedsend", sys_mq_timedsend),
    full(N.SYS_mq_timedreceive, "mq_timedreceive", sys_mq_timedreceive),
    partial(
        N.SYS_mq_notify,
        "mq_notify",
        sys_mq_notify,
        "SIGEV_THREAD's socket must be a NETLINK_ROUTE socket (what libc "
        "makes), the only netlink protocol there is (#5)",
    ),
    full(N.SYS_mq_getsetattr, "mq_getsetattr", sys_mq_getsetattr),
]
