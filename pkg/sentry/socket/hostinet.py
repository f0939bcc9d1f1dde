"""hostinet: AF_INET and AF_INET6 sockets backed by host sockets, for
`runsc --network=host`.

With host networking the sandbox process stays in the host's network
namespace (runsc/boot/confine.py), and each TCP or UDP socket of the
application is a host socket that the sentry holds. The sentry still owns
the socket's file (its descriptor numbers, its status flags, its sharing
across fork and SCM_RIGHTS); the host owns the protocol: ports, addresses,
connections, buffers and every errno they produce.

The host descriptor is always non-blocking. A call that must wait (a
blocking accept, connect, send or receive) tries the host call, and on
EAGAIN sleeps in Task.block polling the host descriptor together with the
task's wake descriptor, so that a signal interrupts it as Linux would;
SO_RCVTIMEO and SO_SNDTIMEO are kept by the sentry and bound that sleep.
poll(2), select(2) and epoll watch the host descriptor itself
(host_poll_fd), as for the host files of stdio.

Application memory never reaches the host: the syscall layer copies
addresses, data and option values in, and this module passes bytes. Only
the options, flags, control messages and ioctls listed in hostinet_allow
go to the host; runsc/boot/filter allows the sentry those calls, and only
when host networking is on.

Unlike Linux (and like gVisor's hostinet):
- raw and ICMP sockets are refused: SOCK_RAW with EPERM, as without
  CAP_NET_RAW, and ICMP datagram sockets with EACCES, as outside
  net.ipv4.ping_group_range (TODO(#7));
- /proc/net/tcp, udp, tcp6 and udp6 list these sockets (procnet.py) with
  their addresses, state, queues, owner and inode, but no timers
  (TODO(#7)); the host's interfaces are seen through the SIOCGIF* ioctls
  of these sockets and through netlink route dumps (a snapshot taken when
  the sandbox starts, hostifaces.py) and in /proc/net/dev (names only);
- a host socket's close with SO_LINGER set waits on the host, where a
  signal cannot interrupt it (TODO(#7));
- SO_ATTACH_FILTER, SO_ATTACH_BPF, TCP_ULP, TCP_MD5SIG, TCP_REPAIR and
  other options outside hostinet_allow fail with ENOPROTOOPT.

Binding a port below 1024 needs CAP_NET_BIND_SERVICE in the sandbox, which
the sentry checks, and on the host, which the sentry keeps only with host
networking (runsc/boot/boot.py).
"""

from __future__ import annotations

import errno as host_errno
import logging
import os
import select
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_NET_BIND_SERVICE
from pkg.sentry.kernel.waiter import EVENT_ERR, EVENT_HUP
from pkg.sentry.socket import hostifaces, hostsock
from pkg.sentry.socket import hostinet_allow as allow
from pkg.sentry.socket.ifaces import is_interface_ioctl
from pkg.sentry.socket.socket import (
    ControlMessages,
    RecvResult,
    SocketFD,
    block,
    deadline_of,
    sigpipe,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)

# The most bytes one receive asks the host for: a large read(2) does not
# make the sentry allocate the whole request (a stream returns less, as a
# short read; every datagram is smaller).
_MAX_RECV = 1 << 20
# The most bytes of a stream one host send is given.
_MAX_SEND = 1 << 22

# SOL_SOCKET options the sentry answers itself: timeouts bound the
# sentry's own waits, and the rest describe the sentry's file.
_SENTRY_OPTIONS = frozenset(
    {
        SK.SO_RCVTIMEO_OLD,
        SK.SO_RCVTIMEO_NEW,
        SK.SO_SNDTIMEO_OLD,
        SK.SO_SNDTIMEO_NEW,
        SK.SO_PEERCRED,
        SK.SO_COOKIE,
    }
)

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
# Events a host poll is asked about: poll(2)'s events are 16 bits.
_HOST_POLL_EVENTS = 0xFFFF

# tcpi_state values /proc/net/udp shows for UDP sockets (TCP_ESTABLISHED
# when connected, TCP_CLOSE otherwise).
_TCP_ESTABLISHED = 1
_TCP_CLOSE = 7


# The open host sockets of each sandbox, for /proc/net (procnet.py).
_open: weakref.WeakKeyDictionary[Kernel, weakref.WeakSet[HostSocket]] = (
    weakref.WeakKeyDictionary()
)
_open_mu = threading.Lock()


def _errno_of(e: OSError) -> SyscallError:
    return SyscallError(e.errno or errno.EIO)


class HostSocket(SocketFD):
    """HostSocket is an AF_INET or AF_INET6 TCP or UDP socket whose
    protocol state lives in a host socket.

    Attributes:
        host_fd: the host socket, non-blocking and close-on-exec, owned by
            this file.
    """

    __slots__ = ("host_fd",)

    def __init__(
        self,
        t: Task,
        family: int,
        stype: int,
        protocol: int,
        flags: int,
        host_fd: int,
    ) -> None:
        super().__init__(t, family, stype, protocol, flags)
        self.host_fd = host_fd
        with _open_mu:
            _open.setdefault(t.kernel, weakref.WeakSet()).add(self)

    def release(self) -> None:
        with _open_mu:
            for sockets in _open.values():
                sockets.discard(self)
        fd, self.host_fd = self.host_fd, -1
        os.close(fd)

    # Waiting.

    def _wait(self, t: Task, events: int, deadline: float | None) -> None:
        """Sleeps until the host socket may have events (or an error),
        the deadline passes, or t is interrupted."""
        block(t, deadline, ((self.host_fd, events),))

    def _nonblocking(self, flags: int) -> bool:
        return self.nonblocking or bool(flags & SK.MSG_DONTWAIT)

    # Addresses and connections.

    def bind(self, t: Task, addr: bytes) -> None:
        port = _port_of(addr)
        if 0 < port < 1024 and not t.creds.has_capability(CAP_NET_BIND_SERVICE):
            raise SyscallError(errno.EACCES)
        try:
            hostsock.bind(self.host_fd, addr)
        except OSError as e:
            raise _errno_of(e) from None

    def listen(self, t: Task, backlog: int) -> None:
        try:
            hostsock.listen(self.host_fd, backlog)
        except OSError as e:
            raise _errno_of(e) from None

    def accepting(self) -> bool:
        return self._host_int(SK.SOL_SOCKET, SK.SO_ACCEPTCONN) != 0

    def accept(self, t: Task, flags: int) -> tuple[SocketFD, bytes]:
        deadline = deadline_of(self.rcvtimeo)
        while True:
            try:
                nfd, peer = hostsock.accept4(
                    self.host_fd, SK.SOCK_NONBLOCK | SK.SOCK_CLOEXEC
                )
                break
            except BlockingIOError:
                if self.nonblocking:
                    raise SyscallError(errno.EAGAIN) from None
            except OSError as e:
                raise _errno_of(e) from None
            self._wait(t, _POLLIN, deadline)
        new = HostSocket(t, self.family, self.stype, self.protocol, flags, nfd)
        # As sk_clone_lock: the timeouts go with the accepted socket.
        new.rcvtimeo = self.rcvtimeo
        new.sndtimeo = self.sndtimeo
        return new, peer

    def connect(self, t: Task, addr: bytes) -> None:
        try:
            hostsock.connect(self.host_fd, addr)
            return
        except OSError as e:
            err = e.errno or errno.EIO
        # A blocking connect that a signal interrupted is restarted and
        # finds the connection still in progress (EALREADY): as Linux's
        # __inet_stream_connect, it goes on waiting.
        if err not in (errno.EINPROGRESS, errno.EALREADY) or self.nonblocking:
            raise SyscallError(err)
        deadline = deadline_of(self.sndtimeo)
        while not self._host_events(_POLLOUT):
            try:
                self._wait(t, _POLLOUT, deadline)
            except SyscallError as e:
                if e.errno == errno.EAGAIN:
                    # The timeout passed: inet_wait_for_connect's caller
                    # reports the connect as still in progress.
                    raise SyscallError(errno.EINPROGRESS) from None
                raise
        err = self._host_int(SK.SOL_SOCKET, SK.SO_ERROR)
        if err:
            raise SyscallError(err)

    def getsockname(self, t: Task) -> bytes:
        try:
            return hostsock.getsockname(self.host_fd)
        except OSError as e:
            raise _errno_of(e) from None

    def getpeername(self, t: Task) -> bytes:
        try:
            return hostsock.getpeername(self.host_fd)
        except OSError as e:
            raise _errno_of(e) from None

    def shutdown(self, t: Task, how: int) -> None:
        try:
            hostsock.shutdown(self.host_fd, how)
        except OSError as e:
            raise _errno_of(e) from None

    # Data.

    def sendmsg(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
    ) -> int:
        # Inet sockets take no rights or credentials; the syscall layer
        # kept only the messages the host may have (hostinet_allow).
        cmsgs = control.host or []
        control.release()
        if flags & SK.MSG_FASTOPEN:
            # TODO(#7): TCP fast open (a connect inside sendto).
            raise SyscallError(errno.EOPNOTSUPP)
        nonblock = self._nonblocking(flags)
        hflags = (flags & allow.SEND_FLAGS) | SK.MSG_DONTWAIT | SK.MSG_NOSIGNAL
        deadline = deadline_of(self.sndtimeo)
        stream = self.stype == SK.SOCK_STREAM
        total = 0
        while True:
            # A stream goes in pieces no larger than a host socket buffer
            # takes at once, so that a large blocking send copies each byte
            # once, not once per wait.
            chunk = data[total : total + _MAX_SEND] if stream else data
            try:
                total += hostsock.sendmsg(self.host_fd, chunk, to, cmsgs, hflags)
                if not stream or total == len(data):
                    return total
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                if total:
                    return total
                if e.errno == host_errno.EPIPE and stream:
                    if not flags & SK.MSG_NOSIGNAL:
                        sigpipe(t)
                raise _errno_of(e) from None
            if nonblock:
                if total:
                    return total
                raise SyscallError(errno.EAGAIN)
            try:
                self._wait(t, _POLLOUT, deadline)
            except SyscallError:
                if total:
                    return total
                raise

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        # The error queue never waits (sock_recv_errqueue).
        nonblock = self._nonblocking(flags) or bool(flags & SK.MSG_ERRQUEUE)
        hflags = (flags & allow.RECV_FLAGS) | SK.MSG_DONTWAIT
        stream = self.stype == SK.SOCK_STREAM
        waitall = (
            stream
            and bool(flags & SK.MSG_WAITALL)
            and not flags & (SK.MSG_PEEK | SK.MSG_TRUNC)
        )
        # MSG_WAITALL fills the whole buffer, in host receives of at most
        # _MAX_RECV; a plain receive may return less.
        want = length if waitall else min(length, _MAX_RECV)
        deadline = deadline_of(self.rcvtimeo)
        parts: list[bytes] = []
        got = 0
        while True:
            try:
                data, n, mflags, addr, cmsgs = hostsock.recvmsg(
                    self.host_fd, min(want - got, _MAX_RECV), hflags
                )
            except BlockingIOError:
                pass
            except OSError as e:
                if got:
                    break
                raise _errno_of(e) from None
            else:
                if not waitall:
                    if stream and flags & SK.MSG_TRUNC:
                        # tcp_recvmsg discards (or counts) instead of
                        # copying.
                        data = b""
                    return RecvResult(
                        data,
                        n,
                        mflags & allow.RECV_OUT_FLAGS,
                        addr,
                        None,
                        _allowed_cmsgs(cmsgs),
                    )
                parts.append(data)
                got += n
                if n == 0 or got >= want:
                    break
            if nonblock:
                if got:
                    break
                raise SyscallError(errno.EAGAIN)
            try:
                self._wait(t, _POLLIN, deadline)
            except SyscallError:
                if got:
                    break
                raise
        out = b"".join(parts)
        return RecvResult(out, len(out))

    # Options.

    def getsockopt(self, t: Task, level: int, name: int) -> bytes:
        if level == SK.SOL_SOCKET and name in _SENTRY_OPTIONS:
            return self.get_socket_option(t, name)
        size = self._allowed_option(level, name)
        if size == 0:
            # An option that can only be set (ip_getsockopt's default).
            raise SyscallError(errno.ENOPROTOOPT)
        try:
            return hostsock.getsockopt(self.host_fd, level, name, size)
        except OSError as e:
            raise _errno_of(e) from None

    def setsockopt(self, t: Task, level: int, name: int, val: bytes) -> None:
        if level == SK.SOL_SOCKET and name in _SENTRY_OPTIONS:
            self.set_socket_option(t, name, val)
            return
        self._allowed_option(level, name)
        try:
            hostsock.setsockopt(self.host_fd, level, name, val)
        except OSError as e:
            raise _errno_of(e) from None

    def _allowed_option(self, level: int, name: int) -> int:
        """Returns the getsockopt size of an option passed to the host.

        Raises:
            SyscallError: for an option that is not, the errno of Linux
                for an unknown one: of an unknown level, EOPNOTSUPP from
                ip_getsockopt for IPv4 and ENOPROTOOPT for IPv6.
        """
        size = allow.OPTIONS.get((level, name))
        if size is not None:
            return size
        if level not in allow.LEVELS and self.family == SK.AF_INET:
            raise SyscallError(errno.EOPNOTSUPP)
        log.debug("hostinet: option level=%d name=%d refused", level, name)
        raise SyscallError(errno.ENOPROTOOPT)

    def _host_int(self, level: int, name: int) -> int:
        try:
            raw = hostsock.getsockopt(self.host_fd, level, name, 4)
        except OSError as e:
            raise _errno_of(e) from None
        return int.from_bytes(raw.ljust(4, b"\0"), "little", signed=True)

    def _host_opt(self, level: int, name: int, size: int) -> bytes:
        """Returns a host option for /proc/net, b"" if the host refuses."""
        try:
            return hostsock.getsockopt(self.host_fd, level, name, size)
        except OSError:
            return b""

    def _host_ioctl_int(self, cmd: int) -> int:
        """Returns an int ioctl's value for /proc/net, 0 if the host
        refuses (FIONREAD of a listener)."""
        try:
            raw = hostsock.ioctl(self.host_fd, cmd, bytes(4))
        except OSError:
            return 0
        return int.from_bytes(raw, "little", signed=True)

    def closed_host(self) -> bool:
        """Reports whether the host socket is gone (released)."""
        return self.host_fd < 0

    def take_error(self) -> int:
        return self._host_int(SK.SOL_SOCKET, SK.SO_ERROR)

    # Readiness: the host's.

    def _host_events(self, mask: int) -> int:
        p = select.poll()
        p.register(self.host_fd, mask & _HOST_POLL_EVENTS)
        ready = 0
        for _fd, revents in p.poll(0):
            ready |= revents
        return ready

    def readiness(self, mask: int) -> int:
        return self._host_events(mask) & (mask | EVENT_ERR | EVENT_HUP)

    def epollable(self) -> bool:
        return True

    def host_poll_fd(self) -> int:
        return self.host_fd

    # ioctls.

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd in allow.INT_IOCTLS:
            try:
                out = hostsock.ioctl(self.host_fd, cmd, bytes(4))
            except OSError as e:
                raise _errno_of(e) from None
            t.copy_out(arg, out)
            return 0
        if is_interface_ioctl(cmd):
            return hostifaces.interface_ioctl(t, cmd, arg, self.host_fd)
        raise SyscallError(errno.ENOTTY)


@dataclass(frozen=True, slots=True)
class ProcNetRow:
    """ProcNetRow is what /proc/net/tcp shows of one socket."""

    local: tuple[bytes, int]
    remote: tuple[bytes, int]
    state: int
    tx_queue: int
    rx_queue: int
    uid: int
    ino: int


def _split_sockaddr(addr: bytes) -> tuple[bytes, int]:
    """Returns a sockaddr's (16-byte IPv6 or IPv4-mapped address, port)."""
    port = _port_of(addr)
    if len(addr) >= SK.SOCKADDR_IN6.size and addr[:2] == SK.AF_INET6.to_bytes(
        2, "little"
    ):
        return addr[8:24], port
    return bytes(10) + b"\xff\xff" + addr[4:8].ljust(4, b"\0"), port


def proc_net_rows(k: Kernel, stype: int, family: int) -> list[ProcNetRow]:
    """Returns the /proc/net/{tcp,udp}{,6} rows of k's host sockets of
    stype and family: those with a port, as Linux lists hashed sockets."""
    with _open_mu:
        sockets = list(_open.get(k, ()))
    rows = []
    for s in sorted(sockets, key=lambda s: s.host_fd):
        if s.stype != stype or s.family != family or s.closed_host():
            continue
        try:
            local = _split_sockaddr(hostsock.getsockname(s.host_fd))
        except OSError:
            continue
        if local[1] == 0:
            continue
        try:
            remote = _split_sockaddr(hostsock.getpeername(s.host_fd))
        except OSError:
            remote = (bytes(16), 0)
        if stype == SK.SOCK_STREAM:
            state = s._host_opt(SK.SOL_TCP, SK.TCP_INFO, 1)[:1] or b"\x07"
            st = state[0]
        else:
            st = _TCP_ESTABLISHED if remote[1] else _TCP_CLOSE
        tx = s._host_ioctl_int(I.TIOCOUTQ)
        rx = s._host_ioctl_int(I.FIONREAD)
        assert s.vd is not None
        attrs = s.vd.dentry.attrs
        rows.append(ProcNetRow(local, remote, st, tx, rx, attrs.uid, attrs.ino))
    return rows


def _port_of(addr: bytes) -> int:
    """Returns the port of an AF_INET or AF_INET6 sockaddr (0 if it is too
    short: the host refuses it)."""
    if len(addr) < 4:
        return 0
    return int.from_bytes(addr[2:4], "big")


def _allowed_cmsgs(cmsgs: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    return [c for c in cmsgs if (c[0], c[1]) in allow.RECV_CMSGS]


def new_host_socket(
    t: Task, family: int, stype: int, protocol: int, flags: int
) -> SocketFD:
    """Makes an AF_INET or AF_INET6 socket backed by a host socket.

    Raises:
        SyscallError: EPROTONOSUPPORT for a protocol the type lacks;
            ESOCKTNOSUPPORT for other types; EPERM for raw sockets and
            EACCES for ICMP datagram sockets (see the module docstring);
            the host's errno if it cannot make the socket (EMFILE...).
    """
    if stype == SK.SOCK_STREAM:
        if protocol not in (0, SK.IPPROTO_TCP):
            raise SyscallError(errno.EPROTONOSUPPORT)
        protocol = SK.IPPROTO_TCP
    elif stype == SK.SOCK_DGRAM:
        if protocol in (SK.IPPROTO_ICMP, SK.IPPROTO_ICMPV6):
            raise SyscallError(errno.EACCES)
        if protocol not in (0, SK.IPPROTO_UDP):
            raise SyscallError(errno.EPROTONOSUPPORT)
        protocol = SK.IPPROTO_UDP
    elif stype == SK.SOCK_RAW:
        raise SyscallError(errno.EPERM)
    else:
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    try:
        # Protocol 0 is the one the type implies: the seccomp filter
        # allows only that.
        host_fd = hostsock.socket(family, stype | SK.SOCK_NONBLOCK | SK.SOCK_CLOEXEC, 0)
    except OSError as e:
        raise _errno_of(e) from None
    try:
        return HostSocket(t, family, stype, protocol, flags, host_fd)
    except BaseException:
        os.close(host_fd)
        raise
