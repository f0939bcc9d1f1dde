"""SocketFD: the open file of every socket, and the options and blocking
rules all families share (net/socket.c, net/core/sock.c).

A socket is a FileDescription whose inode lives in sockfs. The system call
layer (pkg/sentry/syscalls/linux/sys_socket.py) decodes user memory and
calls the operations below with plain values: addresses as the raw
sockaddr bytes, data as bytes, control messages as a ControlMessages. Each
family (unix.py, inet.py, netlink.py) overrides what it supports; the
defaults fail as a Linux family without the operation does (EOPNOTSUPP).

Locking: all socket state of the sandbox is guarded by one lock, `mu`.
Sockets talk to each other (a send touches the peer's queue, a connect the
listener's), and one lock keeps that free of ordering problems; the GIL
serialises the Python code anyway. Waiter queues are notified after `mu`
is released, because an epoll callback may call readiness(), which takes
`mu`, while holding its own lock.

Blocking follows sock_rcvtimeo/sock_intr_errno: a socket without a timeout
that is interrupted by a signal restarts (ERESTARTSYS); one with
SO_RCVTIMEO/SO_SNDTIMEO fails with EINTR instead, and EAGAIN when the
timeout passes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import signal as SIG
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.sockfs.sockfs import new_socket_dentry
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_task
from pkg.sentry.kernel.waiter import Entry, Queue
from pkg.sentry.socket import hostifaces, ifaces
from pkg.sentry.vfs.file_description import FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# mu guards the state of every socket (see the module docstring).
mu = threading.RLock()

# Shutdown bits (sk_shutdown).
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2
SHUTDOWN_MASK = 3

# The ucred SO_PEERCRED reports for a socket without a peer (overflow ids).
NO_PEERCRED = (0, 65534, 65534)


@dataclass(slots=True)
class ControlMessages:
    """ControlMessages are the ancillary data of one message.

    Attributes:
        rights: SCM_RIGHTS files; the holder owns one reference on each.
        creds: SCM_CREDENTIALS (pid, uid, gid).
        host: other messages, as (level, type, data), for a host socket
            to send (hostinet's IP_TOS, IP_PKTINFO...).
    """

    rights: list[FileDescription] | None = None
    creds: tuple[int, int, int] | None = None
    host: list[tuple[int, int, bytes]] | None = None

    def release(self) -> None:
        """Drops the references on rights (a message that is never
        received)."""
        if self.rights:
            for f in self.rights:
                f.dec_ref()
        self.rights = None


@dataclass(slots=True)
class RecvResult:
    """RecvResult is what one receive produced.

    Attributes:
        data: the bytes for the caller's buffers.
        length: the return value (larger than data for MSG_TRUNC).
        flags: msg_flags (MSG_TRUNC, MSG_CTRUNC is added by the caller).
        addr: the sender's sockaddr bytes, or None.
        control: the ancillary data, whose rights the caller now owns.
        cmsgs: other control messages for the caller, as (level, type,
            data): timestamps, packet information.
    """

    data: bytes
    length: int
    flags: int = 0
    addr: bytes | None = None
    control: ControlMessages | None = None
    cmsgs: list[tuple[int, int, bytes]] | None = None


def timeval_bytes(seconds: float) -> bytes:
    """Encodes a timeout as a struct timeval."""
    usec = round(seconds * 1_000_000)
    return SK.TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000)


def parse_timeval(val: bytes) -> float:
    """Decodes SO_RCVTIMEO/SO_SNDTIMEO's struct timeval (sock_set_timeout).

    Raises:
        SyscallError: EINVAL if val is short, EDOM for microseconds out of
            range.
    """
    if len(val) < SK.TIMEVAL.size:
        raise SyscallError(errno.EINVAL)
    sec, usec = SK.TIMEVAL.unpack_from(val)
    if usec < 0 or usec >= 1_000_000:
        raise SyscallError(errno.EDOM)
    if sec < 0:
        # As Linux: a negative timeout means none at all.
        return 0.0
    return sec + usec / 1_000_000


def int_opt(val: bytes) -> int:
    """Decodes an int socket option.

    Raises:
        SyscallError: EINVAL if val is shorter than an int.
    """
    if len(val) < 4:
        raise SyscallError(errno.EINVAL)
    return int.from_bytes(val[:4], "little", signed=True)


def int_bytes(v: int) -> bytes:
    """Encodes an int socket option value."""
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def deadline_of(timeo: float) -> float | None:
    """Returns the time.monotonic() deadline of a socket timeout (0:
    none)."""
    return time.monotonic() + timeo if timeo else None


def block(
    t: Task, deadline: float | None, host_fds: tuple[tuple[int, int], ...] = ()
) -> None:
    """Sleeps in t.block until woken (or, with host_fds, until a host
    descriptor has the poll events asked for), mapping its errors as
    sockets do.

    Raises:
        SyscallError: ERESTARTSYS when interrupted without a timeout, EINTR
            with one; EAGAIN when the deadline passes.
    """
    try:
        t.block(deadline, host_fds)
    except SyscallError as e:
        if e.errno == errno.ETIMEDOUT:
            raise SyscallError(errno.EAGAIN) from None
        if e.errno == errno.ERESTARTSYS and deadline is not None:
            raise SyscallError(errno.EINTR) from None
        raise


def sigpipe(t: Task) -> None:
    """Raises SIGPIPE on t, for an EPIPE without MSG_NOSIGNAL."""
    send_to_task(t, SignalInfo(signo=SIG.SIGPIPE, code=SIG.SI_USER, pid=t.pid))


class SocketFD(FileDescription):
    """SocketFD is the base of every socket's open file.

    Attributes:
        family, stype, protocol: socket(2)'s arguments (stype without
            SOCK_NONBLOCK/SOCK_CLOEXEC).
        wq: notified when readiness may have changed.
        so_error: the pending SO_ERROR (0 if none).
        sndbuf, rcvbuf: SO_SNDBUF/SO_RCVBUF as getsockopt reports them.
        rcvtimeo, sndtimeo: SO_RCVTIMEO/SO_SNDTIMEO in seconds (0: none).
        passcred: SO_PASSCRED.
        opts: the other SOL_SOCKET options that only need remembering.
    """

    __slots__ = (
        "family",
        "opts",
        "passcred",
        "protocol",
        "rcvbuf",
        "rcvtimeo",
        "sndbuf",
        "sndtimeo",
        "so_error",
        "stype",
        "wq",
    )

    def __init__(
        self, t: Task, family: int, stype: int, protocol: int, flags: int
    ) -> None:
        vd = new_socket_dentry(t.kernel.vfs, t.creds)
        super().__init__(F.O_RDWR | (flags & F.O_NONBLOCK), vd)
        # The file holds its own reference now.
        vd.dec_ref()
        self.family = family
        self.stype = stype
        self.protocol = protocol
        self.wq = Queue()
        self.so_error = 0
        self.sndbuf = SK.DEFAULT_BUF
        self.rcvbuf = SK.DEFAULT_BUF
        self.rcvtimeo = 0.0
        self.sndtimeo = 0.0
        self.passcred = False
        self.opts: dict[int, bytes] = {}

    def inherit_options(self, other: SocketFD) -> None:
        """Copies the SOL_SOCKET options of a listener to a socket it
        accepted (sk_clone_lock)."""
        self.sndbuf = other.sndbuf
        self.rcvbuf = other.rcvbuf
        self.rcvtimeo = other.rcvtimeo
        self.sndtimeo = other.sndtimeo
        self.passcred = other.passcred
        self.opts = dict(other.opts)

    # Socket operations; the defaults are those of a family without them.

    def bind(self, t: Task, addr: bytes) -> None:
        """bind(2)."""
        raise SyscallError(errno.EOPNOTSUPP)

    def listen(self, t: Task, backlog: int) -> None:
        """listen(2); backlog is already clamped to [0, SOMAXCONN]."""
        raise SyscallError(errno.EOPNOTSUPP)

    def accept(self, t: Task, flags: int) -> tuple[SocketFD, bytes]:
        """accept4(2): returns the new socket (with SOCK_NONBLOCK from flags)
        and its peer's address."""
        raise SyscallError(errno.EOPNOTSUPP)

    def connect(self, t: Task, addr: bytes) -> None:
        """connect(2)."""
        raise SyscallError(errno.EOPNOTSUPP)

    def getsockname(self, t: Task) -> bytes:
        """getsockname(2)."""
        raise SyscallError(errno.EOPNOTSUPP)

    def getpeername(self, t: Task) -> bytes:
        """getpeername(2)."""
        raise SyscallError(errno.ENOTCONN)

    def shutdown(self, t: Task, how: int) -> None:
        """shutdown(2); how is already checked."""
        raise SyscallError(errno.EOPNOTSUPP)

    def sendmsg(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
    ) -> int:
        """sendmsg(2): sends data (to the address to, if given); returns the
        bytes sent. Takes over control's references in every case."""
        control.release()
        raise SyscallError(errno.EOPNOTSUPP)

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        """recvmsg(2): receives up to length bytes."""
        raise SyscallError(errno.EOPNOTSUPP)

    # Options.

    def getsockopt(self, t: Task, level: int, name: int) -> bytes:
        """getsockopt(2): returns the option's full value; the caller
        truncates it to the user's optlen."""
        if level == SK.SOL_SOCKET:
            return self.get_socket_option(t, name)
        raise SyscallError(errno.EOPNOTSUPP)

    def setsockopt(self, t: Task, level: int, name: int, val: bytes) -> None:
        """setsockopt(2)."""
        if level == SK.SOL_SOCKET:
            self.set_socket_option(t, name, val)
            return
        raise SyscallError(errno.EOPNOTSUPP)

    def peercred(self) -> tuple[int, int, int]:
        """Returns SO_PEERCRED's (pid, uid, gid)."""
        return NO_PEERCRED

    def accepting(self) -> bool:
        """Reports whether the socket is listening (SO_ACCEPTCONN)."""
        return False

    def take_error(self) -> int:
        """Returns and clears the pending SO_ERROR."""
        with mu:
            err, self.so_error = self.so_error, 0
            return err

    def get_socket_option(self, t: Task, name: int) -> bytes:
        """Returns a SOL_SOCKET option (sock_getsockopt)."""
        if name == SK.SO_TYPE:
            return int_bytes(self.stype)
        if name == SK.SO_DOMAIN:
            return int_bytes(self.family)
        if name == SK.SO_PROTOCOL:
            return int_bytes(self.protocol)
        if name == SK.SO_ERROR:
            return int_bytes(self.take_error())
        if name == SK.SO_SNDBUF:
            return int_bytes(self.sndbuf)
        if name == SK.SO_RCVBUF:
            return int_bytes(self.rcvbuf)
        if name == SK.SO_ACCEPTCONN:
            return int_bytes(int(self.accepting()))
        if name == SK.SO_PASSCRED:
            return int_bytes(int(self.passcred))
        if name == SK.SO_PEERCRED:
            return SK.UCRED.pack(*self.peercred())
        if name in (SK.SO_RCVTIMEO_OLD, SK.SO_RCVTIMEO_NEW):
            return timeval_bytes(self.rcvtimeo)
        if name in (SK.SO_SNDTIMEO_OLD, SK.SO_SNDTIMEO_NEW):
            return timeval_bytes(self.sndtimeo)
        if name == SK.SO_LINGER:
            return self.opts.get(name, SK.LINGER.pack(0, 0))
        if name in (SK.SO_RCVLOWAT, SK.SO_SNDLOWAT):
            return self.opts.get(name, int_bytes(1))
        if name == SK.SO_PEEK_OFF:
            return self.opts.get(name, int_bytes(-1))
        if name == SK.SO_BINDTODEVICE:
            return b""
        if name == SK.SO_BINDTOIFINDEX:
            return self.opts.get(name, int_bytes(0))
        if name == SK.SO_COOKIE:
            assert self.vd is not None
            return self.vd.dentry.attrs.ino.to_bytes(8, "little")
        if name in _BOOL_OPTIONS or name in _INT_OPTIONS:
            return self.opts.get(name, int_bytes(0))
        raise SyscallError(errno.ENOPROTOOPT)

    def set_socket_option(self, t: Task, name: int, val: bytes) -> None:
        """Sets a SOL_SOCKET option (sock_setsockopt)."""
        if name in (SK.SO_RCVTIMEO_OLD, SK.SO_RCVTIMEO_NEW):
            self.rcvtimeo = parse_timeval(val)
            return
        if name in (SK.SO_SNDTIMEO_OLD, SK.SO_SNDTIMEO_NEW):
            self.sndtimeo = parse_timeval(val)
            return
        if name == SK.SO_LINGER:
            if len(val) < SK.LINGER.size:
                raise SyscallError(errno.EINVAL)
            onoff, linger = SK.LINGER.unpack_from(val)
            self.opts[name] = SK.LINGER.pack(int(bool(onoff)), linger)
            return
        if name == SK.SO_BINDTOIFINDEX:
            index = int_opt(val)
            if index not in (0, ifaces.LOOPBACK_INDEX):
                raise SyscallError(errno.ENODEV)
            self.opts[name] = int_bytes(index)
            return
        if name == SK.SO_BINDTODEVICE:
            # Only the loopback device exists; binding to it changes
            # nothing and other names do not exist.
            dev = val.split(b"\0", 1)[0]
            if dev and dev != ifaces.LOOPBACK_NAME:
                raise SyscallError(errno.ENODEV)
            return
        v = int_opt(val)
        if name in (SK.SO_SNDBUF, SK.SO_SNDBUFFORCE):
            with mu:
                self.sndbuf = max(min(v, SK.MAX_BUF) * 2, SK.SOCK_MIN_SNDBUF)
            return
        if name in (SK.SO_RCVBUF, SK.SO_RCVBUFFORCE):
            with mu:
                self.rcvbuf = max(min(v, SK.MAX_BUF) * 2, SK.SOCK_MIN_RCVBUF)
            return
        if name == SK.SO_PASSCRED:
            self.passcred = bool(v)
            return
        if name in (SK.SO_RCVLOWAT, SK.SO_SNDLOWAT):
            self.opts[name] = int_bytes(max(v, 1) if name == SK.SO_RCVLOWAT else 1)
            return
        if name == SK.SO_PEEK_OFF:
            # TODO(#5): SO_PEEK_OFF is remembered but peeking ignores it.
            self.opts[name] = int_bytes(v)
            return
        if name in _BOOL_OPTIONS:
            self.opts[name] = int_bytes(int(bool(v)))
            return
        if name in _INT_OPTIONS:
            self.opts[name] = int_bytes(v)
            return
        raise SyscallError(errno.ENOPROTOOPT)

    def opt_flag(self, name: int) -> bool:
        """Reports a boolean SOL_SOCKET option."""
        v = self.opts.get(name)
        return v is not None and v != int_bytes(0)

    # FileDescription operations shared by every socket.

    def read(self, t: Task, length: int) -> bytes:
        return self.recvmsg(t, length, 0).data

    def write(self, t: Task, data: bytes) -> int:
        return self.sendmsg(t, data, None, ControlMessages(), 0)

    def event_register(self, entry: Entry) -> None:
        self.wq.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.wq.unregister(entry)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if ifaces.is_interface_ioctl(cmd):
            if t.kernel.config.host_network:
                return hostifaces.interface_ioctl(t, cmd, arg)
            return ifaces.interface_ioctl(t, cmd, arg)
        return self.socket_ioctl(t, cmd, arg)

    def socket_ioctl(self, t: Task, cmd: int, arg: int) -> int:
        """Performs a family's own ioctl (FIONREAD...)."""
        raise SyscallError(errno.ENOTTY)

    def display_name(self) -> str:
        assert self.vd is not None
        return f"socket:[{self.vd.dentry.attrs.ino}]"


# SOL_SOCKET options that only need remembering: booleans (stored as 0 or
# 1) and plain ints. They change nothing observable in a loopback-only
# sandbox (SO_KEEPALIVE has no idle peer to probe, SO_PRIORITY no queue
# discipline to order), so accepting them as Linux does is faithful.
_BOOL_OPTIONS = frozenset(
    {
        SK.SO_DEBUG,
        SK.SO_REUSEADDR,
        SK.SO_REUSEPORT,
        SK.SO_KEEPALIVE,
        SK.SO_BROADCAST,
        SK.SO_DONTROUTE,
        SK.SO_OOBINLINE,
        SK.SO_NO_CHECK,
        SK.SO_TIMESTAMP_OLD,
        SK.SO_PASSSEC,
        SK.SO_RXQ_OVFL,
    }
)
_INT_OPTIONS = frozenset(
    {SK.SO_PRIORITY, SK.SO_MARK, SK.SO_BUSY_POLL, SK.SO_INCOMING_CPU}
)
