"""Loopback TCP and UDP for AF_INET and AF_INET6.

A sandbox with `--network=none` has only a loopback interface, so its
network stack needs no packets: a TCP connection is a pair of sockets that
hand data to each other (transport.QueueSocket), made by connect directly
on the listener, and a UDP datagram goes straight into the receiving
socket's queue. What applications observe of Linux is kept: ports and the
bind table (EADDRINUSE, SO_REUSEADDR, SO_REUSEPORT, IPv6 sockets that also
take IPv4 unless IPV6_V6ONLY), ephemeral ports (net.ipv4.ip_local_port_range),
addresses reported by getsockname/getpeername/accept/recvfrom, ECONNREFUSED
for a port nobody listens on, and ENETUNREACH for every address that is
not local, as Linux gives without routes.

Addresses are kept as (16-byte IPv6 address, port); IPv4 addresses are
IPv4-mapped (::ffff:a.b.c.d).

Unlike Linux:
- a nonblocking connect to a listener completes at once (it still returns
  EINPROGRESS, and the next connect returns 0);
- writing to a connection whose peer has closed fails with EPIPE at once
  (Linux accepts one write, to which the peer answers with a reset);
- TCP urgent data (MSG_OOB) is refused with EOPNOTSUPP (TODO(#5));
- disconnecting an established TCP socket with AF_UNSPEC fails with
  EOPNOTSUPP (TODO(#5));
- closed connections leave no TIME_WAIT, so their ports are free at once;
- TCP sockets start with the SO_SNDBUF/SO_RCVBUF of net.core (212992), not
  tcp_wmem/tcp_rmem's, and the send buffer bounds the bytes the peer has
  not read;
- there is one stack per sandbox (CLONE_NEWNET fails, TODO(#4));
  `--network=none` and `sandbox` get this loopback-only stack, and
  `--network=host` gets host sockets instead (hostinet.py);
- SO_RCVLOWAT, and control messages other than SO_TIMESTAMP, IP_PKTINFO
  and IPV6_PKTINFO (IP_TOS, IP_TTL...), are accepted and ignored
  (TODO(#5)).
"""

from __future__ import annotations

import collections
import random
import struct
import time
import weakref
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_NET_BIND_SERVICE, CAP_NET_RAW
from pkg.sentry.kernel.waiter import (
    EVENT_ERR,
    EVENT_HUP,
    EVENT_IN,
    EVENT_OUT,
    EVENT_WRNORM,
)
from pkg.sentry.socket import ifaces
from pkg.sentry.socket.hostinet import new_host_socket
from pkg.sentry.socket.icmp import new_icmp_socket
from pkg.sentry.socket.socket import (
    NO_PEERCRED,
    RCV_SHUTDOWN,
    SEND_SHUTDOWN,
    ControlMessages,
    RecvResult,
    SocketFD,
    int_bytes,
    int_opt,
    mu,
)
from pkg.sentry.socket.transport import (
    CONNECTED,
    LISTENING,
    UNCONNECTED,
    QueueSocket,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

# A nonblocking TCP connect waiting for room in a listener's queue.
CONNECTING = 3

_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
ANY6 = bytes(16)
ANY4_MAPPED = _MAPPED_PREFIX + bytes(4)
LOOPBACK6 = bytes(15) + b"\x01"
LOOPBACK4_MAPPED = _MAPPED_PREFIX + bytes([127, 0, 0, 1])

# net.ipv4.ip_local_port_range.
EPHEMERAL_FIRST = 32768
EPHEMERAL_LAST = 60999
# Ports below this need CAP_NET_BIND_SERVICE
# (net.ipv4.ip_unprivileged_port_start).
PROT_SOCK = 1024

# The largest UDP payloads (65535 less the IP and UDP headers).
_UDP_MAX_V4 = 65507
_UDP_MAX_V6 = 65527

# TCP_MAXSEG before a connection (TCP_MSS_DEFAULT) and on loopback (the
# 65536-byte MTU less the IP and TCP headers and timestamps).
_MSS_DEFAULT = 536
_MSS_LOOPBACK = 65483

# struct tcp_info's size; only tcpi_state is filled in.
_TCP_INFO_SIZE = 232
# tcpi_state values (TCP_ESTABLISHED...).
_TCP_ESTABLISHED = 1
_TCP_CLOSE = 7
_TCP_LISTEN = 10

Addr = tuple[bytes, int]


def is_mapped(ip: bytes) -> bool:
    """Reports whether ip is an IPv4-mapped IPv6 address."""
    return ip[:12] == _MAPPED_PREFIX


def _is_loopback(ip: bytes) -> bool:
    if is_mapped(ip):
        return ip[12] == 127
    return ip == LOOPBACK6


def _is_any(ip: bytes) -> bool:
    return ip in (ANY6, ANY4_MAPPED)


class _Stack:
    """_Stack is a sandbox's port tables: (protocol, port) to the sockets
    bound there."""

    __slots__ = ("ports",)

    def __init__(self) -> None:
        self.ports: dict[tuple[int, int], list[InetSocket]] = {}


_stacks: weakref.WeakKeyDictionary[Kernel, _Stack] = weakref.WeakKeyDictionary()


def _stack(k: Kernel) -> _Stack:
    with mu:
        st = _stacks.get(k)
        if st is None:
            st = _stacks[k] = _Stack()
        return st


def sockets_of(k: Kernel, stype: int) -> list[InetSocket]:
    """Returns the bound sockets of type stype in k, by port (for
    /proc/net). The caller holds mu."""
    out: list[InetSocket] = []
    for (kind, _port), bound in sorted(_stack(k).ports.items()):
        if kind == stype:
            out.extend(bound)
    return out


def _parts(ip: bytes, v6only: bool) -> tuple[object, object]:
    """Returns the (IPv4, IPv6) addresses a binding covers: None, "any" or
    the address."""
    if is_mapped(ip):
        return ("any" if ip == ANY4_MAPPED else ip), None
    if ip == ANY6:
        return (None if v6only else "any"), "any"
    return None, ip


def _overlap(a: InetSocket, b: InetSocket) -> bool:
    assert a.local is not None and b.local is not None
    for p, q in zip(
        _parts(a.local[0], a.v6only), _parts(b.local[0], b.v6only), strict=True
    ):
        if p is None or q is None:
            continue
        if "any" in (p, q) or p == q:
            return True
    return False


def _covers(s: InetSocket, ip: bytes) -> int:
    """Returns how well s's binding matches destination ip: 2 exactly, 1
    as a wildcard, 0 not at all."""
    assert s.local is not None
    v4, v6 = _parts(s.local[0], s.v6only)
    part = v4 if is_mapped(ip) else v6
    if part is None:
        return 0
    if part == ip:
        return 2
    return 1 if part == "any" else 0


class InetSocket(QueueSocket):
    """InetSocket is a loopback TCP (SOCK_STREAM) or UDP (SOCK_DGRAM)
    socket of AF_INET or AF_INET6.

    Attributes:
        local: the bound (address, port), or None.
        remote: the peer's (address, port): a TCP connection's, or a UDP
            socket's default destination.
        v6only: IPV6_V6ONLY.
        connect_reported: a nonblocking connect returned EINPROGRESS and
            its outcome is still to be reported by the next connect.
        syn_wait: clients of a listener waiting for room in its queue.
        proto_opts: (level, name) to value of the IP, IPv6, TCP and UDP
            options that only need remembering.
    """

    __slots__ = (
        "_udp_src",
        "connect_reported",
        "kernel",
        "local",
        "proto_opts",
        "remote",
        "syn_wait",
        "v6only",
    )

    def __init__(
        self, t: Task, family: int, stype: int, protocol: int, flags: int
    ) -> None:
        super().__init__(t, family, stype, protocol, flags)
        self.kernel = t.kernel
        self.local: Addr | None = None
        self.remote: Addr | None = None
        self.v6only = False
        self.connect_reported = False
        self.syn_wait: collections.deque[tuple[InetSocket, object]] = (
            collections.deque()
        )
        self.proto_opts: dict[tuple[int, int], bytes] = {}
        self._udp_src: tuple[bytes, int, bytes, int] | None = None

    @property
    def is_tcp(self) -> bool:
        """Reports whether this is a TCP socket."""
        return self.stype == SK.SOCK_STREAM

    # Addresses.

    def parse(self, addr: bytes, for_bind: bool) -> Addr:
        """Decodes a sockaddr for this socket's family.

        Raises:
            SyscallError: EINVAL for a short address, EAFNOSUPPORT for
                another family.
        """
        if self.family == SK.AF_INET:
            if len(addr) < SK.SOCKADDR_IN.size:
                raise SyscallError(errno.EINVAL)
            fam, port, ip4 = SK.SOCKADDR_IN.unpack_from(addr)
            if fam != SK.AF_INET:
                # inet_bind's "compatibility games": AF_UNSPEC with
                # INADDR_ANY binds as AF_INET.
                if not (for_bind and fam == SK.AF_UNSPEC and ip4 == bytes(4)):
                    raise SyscallError(errno.EAFNOSUPPORT)
            return _MAPPED_PREFIX + ip4, int.from_bytes(port, "big")
        if len(addr) < SK.SOCKADDR_IN6.size:
            raise SyscallError(errno.EINVAL)
        fam, port, _flow, ip6, _scope = SK.SOCKADDR_IN6.unpack_from(addr)
        if fam != SK.AF_INET6:
            raise SyscallError(errno.EAFNOSUPPORT)
        return ip6, int.from_bytes(port, "big")

    def format(self, a: Addr | None) -> bytes:
        """Encodes an address as this socket's family's sockaddr."""
        ip, port = a if a is not None else (self._any(), 0)
        pb = port.to_bytes(2, "big")
        if self.family == SK.AF_INET:
            return SK.SOCKADDR_IN.pack(SK.AF_INET, pb, ip[12:])
        return SK.SOCKADDR_IN6.pack(SK.AF_INET6, pb, 0, ip, 0)

    def _any(self) -> bytes:
        return ANY4_MAPPED if self.family == SK.AF_INET else ANY6

    def getsockname(self, t: Task) -> bytes:
        with mu:
            return self.format(self.local)

    def getpeername(self, t: Task) -> bytes:
        with mu:
            if self.remote is None or (self.is_tcp and self.state != CONNECTED):
                raise SyscallError(errno.ENOTCONN)
            return self.format(self.remote)

    def message_address(self) -> bytes | None:
        # TCP receivers get no address (tcp_recvmsg leaves msg_name); UDP
        # ones get the (address, port) the send came from, which recvmsg
        # formats for the receiver's family.
        if self.is_tcp:
            return None
        return self._udp_src  # type: ignore[return-value]

    # Binding.

    def _check_local(self, ip: bytes) -> None:
        if self.family == SK.AF_INET6 and is_mapped(ip) and self.v6only:
            raise SyscallError(errno.EINVAL)
        if not (_is_any(ip) or _is_loopback(ip)):
            raise SyscallError(errno.EADDRNOTAVAIL)

    def bind(self, t: Task, addr: bytes) -> None:
        ip, port = self.parse(addr, for_bind=True)
        self._check_local(ip)
        if 0 < port < PROT_SOCK and not t.creds.has_capability(CAP_NET_BIND_SERVICE):
            raise SyscallError(errno.EACCES)
        with mu:
            if self.local is not None:
                raise SyscallError(errno.EINVAL)
            self._bind_locked(ip, port)

    def _conflicts_locked(self, port: int) -> bool:
        st = _stack(self.kernel)
        reuse = self.opt_flag(SK.SO_REUSEADDR)
        reuseport = self.opt_flag(SK.SO_REUSEPORT)
        for o in st.ports.get((self.stype, port), ()):
            if o is self or not _overlap(self, o):
                continue
            if reuseport and o.opt_flag(SK.SO_REUSEPORT):
                continue
            if reuse and o.opt_flag(SK.SO_REUSEADDR):
                if not self.is_tcp or o.state != LISTENING:
                    continue
            return True
        return False

    def _bind_locked(self, ip: bytes, port: int) -> None:
        """Binds to (ip, port); port 0 picks an ephemeral port."""
        self.local = (ip, port)
        try:
            if port == 0:
                port = self._ephemeral_locked()
                self.local = (ip, port)
            elif self._conflicts_locked(port):
                raise SyscallError(errno.EADDRINUSE)
        except SyscallError:
            self.local = None
            raise
        _stack(self.kernel).ports.setdefault((self.stype, port), []).append(self)

    def _ephemeral_locked(self) -> int:
        count = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        start = random.randrange(count)
        ports = _stack(self.kernel).ports
        for i in range(count):
            port = EPHEMERAL_FIRST + (start + i) % count
            if not ports.get((self.stype, port)):
                return port
        raise SyscallError(errno.EADDRINUSE)

    def unbind_locked(self) -> None:
        if self.local is None:
            return
        key = (self.stype, self.local[1])
        ports = _stack(self.kernel).ports
        bound = ports.get(key)
        if bound is not None and self in bound:
            bound.remove(self)
            if not bound:
                del ports[key]

    def _destination(self, a: Addr) -> Addr:
        """Returns where a connection or datagram to a goes: the loopback
        address for the unspecified one (as Linux connects INADDR_ANY to
        itself).

        Raises:
            SyscallError: ENETUNREACH for an address that is not local.
        """
        ip, port = a
        if self.family == SK.AF_INET6 and is_mapped(ip) and self.v6only:
            raise SyscallError(errno.ENETUNREACH)
        if ip == ANY4_MAPPED:
            ip = LOOPBACK4_MAPPED
        elif ip == ANY6:
            ip = LOOPBACK6
        if not _is_loopback(ip):
            raise SyscallError(errno.ENETUNREACH)
        return ip, port

    @staticmethod
    def _source_for(dst_ip: bytes) -> bytes:
        # The local route's preferred source (127.0.0.1 for all of
        # 127.0.0.0/8), as ip_route_output picks it.
        return LOOPBACK4_MAPPED if is_mapped(dst_ip) else LOOPBACK6

    def _autobind_for_locked(self, dst_ip: bytes) -> None:
        """Gives a socket without a port an ephemeral one, and a wildcard
        address the source address for dst_ip (inet_autobind and the route
        lookup of a connect)."""
        if self.local is None:
            self._bind_locked(self._any(), 0)
        assert self.local is not None
        if _is_any(self.local[0]) and self.is_tcp:
            self.local = (self._source_for(dst_ip), self.local[1])

    # TCP connections.

    def listen_prepare_locked(self, t: Task) -> None:
        if self.local is None:
            self._bind_locked(self._any(), 0)
        elif self.state != LISTENING:
            assert self.local is not None
            st = _stack(self.kernel)
            for o in st.ports.get((self.stype, self.local[1]), ()):
                if o is self or o.state != LISTENING or not _overlap(self, o):
                    continue
                if self.opt_flag(SK.SO_REUSEPORT) and o.opt_flag(SK.SO_REUSEPORT):
                    continue
                raise SyscallError(errno.EADDRINUSE)

    def connect(self, t: Task, addr: bytes) -> None:
        if len(addr) >= 2 and struct.unpack_from("<H", addr)[0] == SK.AF_UNSPEC:
            self._disconnect()
            return
        if not self.is_tcp:
            self._connect_udp(t, addr)
            return
        with mu:
            if self.connect_reported:
                # The outcome of an earlier nonblocking connect.
                if self.state == CONNECTING:
                    raise SyscallError(errno.EALREADY)
                self.connect_reported = False
                if self.state == CONNECTED:
                    return
                err, self.so_error = self.so_error, 0
                raise SyscallError(err or errno.ECONNABORTED)
            if self.state == CONNECTED:
                raise SyscallError(errno.EISCONN)
            if self.state != UNCONNECTED:
                raise SyscallError(errno.EINVAL)
        dst = self._destination(self.parse(addr, for_bind=False))
        with mu:
            self._autobind_for_locked(dst[0])
            listener = self._find_listener_locked(dst)
        if listener is None:
            if self.nonblocking:
                with mu:
                    self.so_error = errno.ECONNREFUSED
                    self.connect_reported = True
                self.wq.notify(EVENT_OUT | EVENT_ERR | EVENT_HUP)
                raise SyscallError(errno.EINPROGRESS)
            raise SyscallError(errno.ECONNREFUSED)

        def make_server() -> InetSocket:
            return self._make_server(t, listener, dst)

        try:
            connected = self.connect_to_listener(t, listener, make_server)
        except SyscallError as e:
            if e.errno != errno.EAGAIN:
                raise
            # SO_SNDTIMEO ran out: the connection goes on in the background
            # and connect reports EINPROGRESS (inet_stream_connect).
            connected = False
        if not connected:
            with mu:
                self.state = CONNECTING
                self.connect_reported = True
                listener.syn_wait.append((self, make_server))
            raise SyscallError(errno.EINPROGRESS)
        if self.nonblocking:
            with mu:
                self.connect_reported = True
            raise SyscallError(errno.EINPROGRESS)

    def _make_server(self, t: Task, listener: InetSocket, dst: Addr) -> InetSocket:
        """Makes the accepted end of a connection from self to dst, under
        mu."""
        server = InetSocket(t, listener.family, SK.SOCK_STREAM, listener.protocol, 0)
        server.inherit_options(listener)
        server.proto_opts = dict(listener.proto_opts)
        server.v6only = listener.v6only
        assert self.local is not None and listener.local is not None
        server.local = (dst[0], listener.local[1])
        server.remote = self.local
        self.remote = dst
        # The accepted socket holds the port too (inet_inherit_port).
        _stack(self.kernel).ports.setdefault(
            (SK.SOCK_STREAM, listener.local[1]), []
        ).append(server)
        return server

    def _find_listener_locked(self, dst: Addr) -> InetSocket | None:
        best, best_score = None, 0
        for o in _stack(self.kernel).ports.get((SK.SOCK_STREAM, dst[1]), ()):
            if o.state != LISTENING or o.closed:
                continue
            score = _covers(o, dst[0])
            if score > best_score:
                best, best_score = o, score
        return best

    def accept(self, t: Task, flags: int) -> tuple[SocketFD, bytes]:
        s, _ = super().accept(t, flags)
        assert isinstance(s, InetSocket)
        self._admit_waiting(t)
        with mu:
            return s, s.format(s.remote)

    def _admit_waiting(self, t: Task) -> None:
        """Completes the connect of a client that waited for room."""
        while True:
            with mu:
                if not self.syn_wait or len(self.pending) > self.backlog:
                    return
                client, make_server = self.syn_wait.popleft()
                if client.closed or client.state != CONNECTING:
                    continue
                client.state = UNCONNECTED
            client.connect_to_listener(t, self, make_server)
            return

    def _disconnect(self) -> None:
        with mu:
            if self.is_tcp:
                # TODO(#5): disconnecting an established TCP socket
                # (tcp_disconnect) is not modelled; an unconnected one has
                # nothing to undo.
                if self.state == CONNECTED:
                    raise SyscallError(errno.EOPNOTSUPP)
                return
            self.remote = None
            self.state = UNCONNECTED

    def shutdown(self, t: Task, how: int) -> None:
        notify = False
        with mu:
            state = self.state
            if state == LISTENING and how != SK.SHUT_WR:
                # inet_shutdown disconnects a listener: accept wakes with
                # EINVAL.
                self.state = UNCONNECTED
                pending = list(self.pending)
                self.pending.clear()
            elif state != CONNECTED:
                # inet_shutdown fails but marks the socket shut down anyway,
                # so that pollers see it ("hack to wake up other
                # listeners").
                self.shut |= _SHUT_BITS[how]
                notify = True
            else:
                pending = None
        if notify:
            self.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP)
            raise SyscallError(errno.ENOTCONN)
        if state == LISTENING:
            for s in pending or ():
                s.dec_ref()
            self.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP)
            return
        if self.is_tcp:
            super().shutdown(t, how)
            return
        with mu:
            self.shut |= _SHUT_BITS[how]
        self.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP)

    def release(self) -> None:
        with mu:
            waiting = list(self.syn_wait)
            self.syn_wait.clear()
            for client, _ in waiting:
                if client.state == CONNECTING:
                    client.state = UNCONNECTED
                    client.so_error = errno.ECONNREFUSED
        for client, _ in waiting:
            client.wq.notify(EVENT_OUT | EVENT_ERR | EVENT_HUP)
        super().release()

    def peercred(self) -> tuple[int, int, int]:
        # Only unix sockets know their peer's credentials.
        return NO_PEERCRED

    def peer_shutdown_bits(self, bits: int) -> int:
        # A FIN ends the peer's input; SHUT_RD sends nothing.
        return RCV_SHUTDOWN if bits & SEND_SHUTDOWN else 0

    def reset_on_close(self) -> bool:
        linger = self.opts.get(SK.SO_LINGER)
        return linger is not None and SK.LINGER.unpack(linger) == (1, 0)

    def send_reports_error(self) -> bool:
        return True

    def send_unconnected_errno(self) -> int:
        # tcp_sendmsg: sk_stream_wait_connect fails with EPIPE.
        return errno.EPIPE

    def unconnected_writable(self) -> bool:
        return self.state != CONNECTING

    def unconnected_events(self) -> int:
        return EVENT_HUP if self.state != CONNECTING else 0

    def recv_unconnected(self) -> RecvResult | None:
        raise SyscallError(errno.ENOTCONN)

    def check_send_address_locked(self, to: bytes) -> None:
        # TCP ignores sendto's address (unless it is asked for fast open).
        pass

    # UDP.

    def _connect_udp(self, t: Task, addr: bytes) -> None:
        dst = self._destination(self.parse(addr, for_bind=False))
        with mu:
            self._autobind_for_locked(dst[0])
            self.remote = dst
            self.state = CONNECTED

    def check_message_size(self, n: int) -> None:
        limit = _UDP_MAX_V4 if self.family == SK.AF_INET else _UDP_MAX_V6
        if n > limit:
            raise SyscallError(errno.EMSGSIZE)

    def resolve_destination(self, t: Task, to: bytes) -> object:
        return self._destination(self.parse(to, for_bind=False))

    def datagram_destination_locked(
        self, t: Task, to: bytes | None, target: object
    ) -> QueueSocket | None:
        if self.so_error:
            err, self.so_error = self.so_error, 0
            raise SyscallError(err)
        if self.shut & SEND_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        if to is not None:
            assert isinstance(target, tuple)
            dst: Addr = target
            if dst[1] == 0:
                # udp_sendmsg refuses port 0.
                raise SyscallError(errno.EINVAL)
        elif self.remote is not None:
            dst = self.remote
        else:
            raise SyscallError(errno.EDESTADDRREQ)
        self._autobind_for_locked(dst[0])
        assert self.local is not None
        src_ip = self.local[0]
        if _is_any(src_ip):
            src_ip = self._source_for(dst[0])
        best, best_score = None, 0
        for o in _stack(self.kernel).ports.get((SK.SOCK_DGRAM, dst[1]), ()):
            if o.closed or o.shut & RCV_SHUTDOWN:
                continue
            if o.remote is not None and o.remote != (src_ip, self.local[1]):
                continue
            score = _covers(o, dst[0])
            # Among equals, the socket bound last wins, as in Linux's
            # lookup of SO_REUSEADDR sockets.
            if score and score >= best_score:
                best, best_score = o, score
        if best is None:
            if self.remote is not None and to is None:
                # The ICMP port unreachable, reported on connected sockets.
                self.so_error = errno.ECONNREFUSED
            return None
        # What the receiver learns of the datagram: its source, and for
        # IP_PKTINFO and SO_TIMESTAMP its destination and arrival time.
        self._udp_src = (src_ip, self.local[1], dst[0], time.time_ns())
        return best

    def has_room_locked(self, dst: QueueSocket, n: int) -> bool:
        if self.is_tcp:
            return super().has_room_locked(dst, n)
        # A full UDP receiver drops the datagram; the sender never waits.
        return True

    def push_locked(self, m: object) -> None:
        if not self.is_tcp and self.rq_bytes + len(m.data) > self.rcvbuf:  # type: ignore[attr-defined]
            return
        super().push_locked(m)  # type: ignore[arg-type]

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        if flags & SK.MSG_ERRQUEUE:
            # No ICMP errors are ever queued (ip_recv_error of an empty
            # queue).
            raise SyscallError(errno.EAGAIN)
        r = super().recvmsg(t, length, flags)
        if self.is_tcp:
            if flags & SK.MSG_TRUNC:
                # tcp_recvmsg discards (or, with MSG_PEEK, only counts) the
                # data instead of copying it.
                r.data = b""
            return r
        if isinstance(r.addr, tuple):
            src, port, dst, when = r.addr
            r.addr = self.format((src, port))
            r.cmsgs = self._datagram_cmsgs(dst, when)
        return r

    def _datagram_cmsgs(self, dst: bytes, when_ns: int) -> list[tuple[int, int, bytes]]:
        """Returns the control messages a received datagram carries: the
        SO_TIMESTAMP of its arrival, then IP_PKTINFO or IPV6_PKTINFO."""
        out = []
        if self.opt_flag(SK.SO_TIMESTAMP_OLD):
            usec = when_ns // 1000
            out.append(
                (
                    SK.SOL_SOCKET,
                    SK.SO_TIMESTAMP_OLD,
                    SK.TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000),
                )
            )
        on = int_bytes(0)
        if is_mapped(dst) and self.proto_opts.get((SK.SOL_IP, SK.IP_PKTINFO), on) != on:
            ip4 = dst[12:]
            info = struct.pack("<i4s4s", ifaces.LOOPBACK_INDEX, ip4, ip4)
            out.append((SK.SOL_IP, SK.IP_PKTINFO, info))
        if self.family == SK.AF_INET6 and (
            self.proto_opts.get((SK.SOL_IPV6, SK.IPV6_RECVPKTINFO), on) != on
        ):
            info = dst + struct.pack("<i", ifaces.LOOPBACK_INDEX)
            out.append((SK.SOL_IPV6, SK.IPV6_PKTINFO, info))
        return out

    def attach_credentials_locked(
        self, t: Task, dst: QueueSocket, control: ControlMessages
    ) -> ControlMessages | None:
        control.release()
        return None

    # Options.

    def getsockopt(self, t: Task, level: int, name: int) -> bytes:
        if level == SK.SOL_SOCKET:
            return self.get_socket_option(t, name)
        if level == SK.SOL_TCP and self.is_tcp:
            return self._get_tcp(name)
        if level == SK.SOL_UDP and not self.is_tcp:
            return self.proto_opts.get((level, name), int_bytes(0))
        if level == SK.SOL_IP:
            return self._get_ip(name)
        if level == SK.SOL_IPV6 and self.family == SK.AF_INET6:
            return self._get_ipv6(name)
        raise SyscallError(self._bad_level_errno())

    def setsockopt(self, t: Task, level: int, name: int, val: bytes) -> None:
        if level == SK.SOL_SOCKET:
            self.set_socket_option(t, name, val)
            return
        if level == SK.SOL_TCP and self.is_tcp:
            self._set_tcp(name, val)
            return
        if level == SK.SOL_UDP and not self.is_tcp:
            self.proto_opts[(level, name)] = int_bytes(int_opt(val))
            return
        if level == SK.SOL_IP:
            self._set_ip(name, val)
            return
        if level == SK.SOL_IPV6 and self.family == SK.AF_INET6:
            self._set_ipv6(name, val)
            return
        raise SyscallError(self._bad_level_errno())

    def _bad_level_errno(self) -> int:
        # An unknown level ends in ip_getsockopt (EOPNOTSUPP) for IPv4 and
        # in ipv6_getsockopt (ENOPROTOOPT) for IPv6.
        return errno.EOPNOTSUPP if self.family == SK.AF_INET else errno.ENOPROTOOPT

    def _get_tcp(self, name: int) -> bytes:
        if name == SK.TCP_INFO:
            state = {LISTENING: _TCP_LISTEN, CONNECTED: _TCP_ESTABLISHED}.get(
                self.state, _TCP_CLOSE
            )
            return bytes([state]).ljust(_TCP_INFO_SIZE, b"\0")
        if name == SK.TCP_CONGESTION:
            return b"cubic".ljust(16, b"\0")
        if name == SK.TCP_MAXSEG:
            key = (SK.SOL_TCP, name)
            if key in self.proto_opts:
                return self.proto_opts[key]
            return int_bytes(_MSS_LOOPBACK if self.state == CONNECTED else _MSS_DEFAULT)
        if name in _TCP_DEFAULTS:
            default = int_bytes(_TCP_DEFAULTS[name])
            return self.proto_opts.get((SK.SOL_TCP, name), default)
        raise SyscallError(errno.ENOPROTOOPT)

    def _set_tcp(self, name: int, val: bytes) -> None:
        if name == SK.TCP_CONGESTION:
            algo = val.split(b"\0", 1)[0]
            if algo not in (b"cubic", b"reno"):
                raise SyscallError(errno.ENOENT)
            return
        if name not in _TCP_DEFAULTS and name != SK.TCP_MAXSEG:
            raise SyscallError(errno.ENOPROTOOPT)
        v = int_opt(val)
        lo, hi = _TCP_RANGES.get(name, (-(1 << 31), (1 << 31) - 1))
        if not lo <= v <= hi:
            raise SyscallError(errno.EINVAL)
        if name in _TCP_BOOLS:
            v = int(bool(v))
        self.proto_opts[(SK.SOL_TCP, name)] = int_bytes(v)

    def _get_ip(self, name: int) -> bytes:
        if name in _IP_DEFAULTS:
            return self.proto_opts.get((SK.SOL_IP, name), int_bytes(_IP_DEFAULTS[name]))
        raise SyscallError(errno.ENOPROTOOPT)

    def _set_ip(self, name: int, val: bytes) -> None:
        if name in _IP_MEMBERSHIP:
            # Joining a group needs a multicast route, which a loopback-only
            # namespace has none of (ip_mc_find_dev fails).
            raise SyscallError(errno.ENODEV)
        if name not in _IP_DEFAULTS:
            raise SyscallError(errno.ENOPROTOOPT)
        # do_ip_setsockopt takes an int, or a single byte.
        if len(val) >= 4:
            v = int_opt(val)
        elif val:
            v = val[0]
        else:
            raise SyscallError(errno.EINVAL)
        if name == SK.IP_TTL:
            if v == -1:
                v = _IP_DEFAULTS[SK.IP_TTL]
            elif not 1 <= v <= 255:
                raise SyscallError(errno.EINVAL)
        self.proto_opts[(SK.SOL_IP, name)] = int_bytes(v)

    def _get_ipv6(self, name: int) -> bytes:
        if name == SK.IPV6_V6ONLY:
            return int_bytes(int(self.v6only))
        if name in _IPV6_DEFAULTS:
            return self.proto_opts.get(
                (SK.SOL_IPV6, name), int_bytes(_IPV6_DEFAULTS[name])
            )
        raise SyscallError(errno.ENOPROTOOPT)

    def _set_ipv6(self, name: int, val: bytes) -> None:
        v = int_opt(val)
        if name == SK.IPV6_V6ONLY:
            with mu:
                if self.local is not None:
                    raise SyscallError(errno.EINVAL)
                self.v6only = bool(v)
            return
        if name in _IPV6_MEMBERSHIP:
            raise SyscallError(errno.ENODEV)
        if name not in _IPV6_DEFAULTS:
            raise SyscallError(errno.ENOPROTOOPT)
        if name == SK.IPV6_UNICAST_HOPS:
            if v == -1:
                v = _IPV6_DEFAULTS[name]
            elif not 0 <= v <= 255:
                raise SyscallError(errno.EINVAL)
        self.proto_opts[(SK.SOL_IPV6, name)] = int_bytes(v)

    def readiness(self, mask: int) -> int:
        ready = super().readiness(mask)
        if not self.is_tcp:
            # UDP never waits to send, and is never hung up.
            ready &= ~EVENT_HUP
            ready |= (EVENT_OUT | EVENT_WRNORM) & mask
        return ready


_SHUT_BITS = {
    SK.SHUT_RD: RCV_SHUTDOWN,
    SK.SHUT_WR: SEND_SHUTDOWN,
    SK.SHUT_RDWR: RCV_SHUTDOWN | SEND_SHUTDOWN,
}

_TCP_DEFAULTS = {
    SK.TCP_NODELAY: 0,
    SK.TCP_CORK: 0,
    SK.TCP_KEEPIDLE: 7200,
    SK.TCP_KEEPINTVL: 75,
    SK.TCP_KEEPCNT: 9,
    SK.TCP_SYNCNT: 6,
    SK.TCP_LINGER2: 60,
    SK.TCP_DEFER_ACCEPT: 0,
    SK.TCP_WINDOW_CLAMP: 0,
    SK.TCP_QUICKACK: 1,
    SK.TCP_USER_TIMEOUT: 0,
    SK.TCP_NOTSENT_LOWAT: 0,
    # TCP_THIN_LINEAR_TIMEOUTS, TCP_THIN_DUPACK, TCP_FASTOPEN,
    # TCP_FASTOPEN_CONNECT, TCP_INQ: accepted as Linux does; fast open
    # makes no difference on a loopback without handshakes.
    16: 0,
    17: 0,
    23: 0,
    30: 0,
    36: 0,
}
_TCP_BOOLS = frozenset({SK.TCP_NODELAY, SK.TCP_CORK, SK.TCP_QUICKACK})
_TCP_RANGES = {
    SK.TCP_KEEPIDLE: (1, 32767),
    SK.TCP_KEEPINTVL: (1, 32767),
    SK.TCP_KEEPCNT: (1, 127),
    SK.TCP_SYNCNT: (1, 127),
    SK.TCP_USER_TIMEOUT: (0, (1 << 31) - 1),
}
_IP_DEFAULTS = {
    SK.IP_TOS: 0,
    SK.IP_TTL: 64,
    SK.IP_PKTINFO: 0,
    SK.IP_RECVERR: 0,
    SK.IP_RECVTOS: 0,
    SK.IP_MTU_DISCOVER: 0,
    SK.IP_MULTICAST_TTL: 1,
    SK.IP_MULTICAST_LOOP: 1,
    15: 0,  # IP_FREEBIND
    24: 0,  # IP_BIND_ADDRESS_NO_PORT
}
# IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP, MCAST_JOIN_GROUP.
_IP_MEMBERSHIP = frozenset({35, 39, 42})
# IPV6_ADD_MEMBERSHIP, MCAST_JOIN_GROUP.
_IPV6_MEMBERSHIP = frozenset({20, 42})
_IPV6_DEFAULTS = {
    SK.IPV6_UNICAST_HOPS: 64,
    SK.IPV6_MULTICAST_LOOP: 1,
    SK.IPV6_RECVPKTINFO: 0,
    SK.IPV6_TCLASS: 0,
}


def new_inet_socket(
    t: Task, family: int, stype: int, protocol: int, flags: int
) -> SocketFD:
    """Makes an AF_INET or AF_INET6 socket (inet_create).

    Raises:
        SyscallError: EPROTONOSUPPORT for a protocol the type lacks;
            ESOCKTNOSUPPORT for SOCK_SEQPACKET (no SCTP) and for raw sockets
            other than ICMP (EPERM without CAP_NET_RAW, as Linux); EACCES
            for ICMP datagram sockets, as outside net.ipv4.ping_group_range
            by default.
    """
    if t.kernel.config.host_network:
        return new_host_socket(t, family, stype, protocol, flags)
    if stype == SK.SOCK_STREAM:
        if protocol not in (0, SK.IPPROTO_TCP):
            raise SyscallError(errno.EPROTONOSUPPORT)
        return InetSocket(t, family, stype, SK.IPPROTO_TCP, flags)
    if stype == SK.SOCK_DGRAM:
        if protocol in (SK.IPPROTO_ICMP, SK.IPPROTO_ICMPV6):
            raise SyscallError(errno.EACCES)
        if protocol not in (0, SK.IPPROTO_UDP):
            raise SyscallError(errno.EPROTONOSUPPORT)
        return InetSocket(t, family, stype, SK.IPPROTO_UDP, flags)
    if stype == SK.SOCK_RAW:
        if not t.creds.has_capability(CAP_NET_RAW):
            raise SyscallError(errno.EPERM)
        if protocol == 0:
            raise SyscallError(errno.EPROTONOSUPPORT)
        icmp = SK.IPPROTO_ICMP if family == SK.AF_INET else SK.IPPROTO_ICMPV6
        if protocol == icmp:
            return new_icmp_socket(t, family, protocol, flags)
        # Raw sockets of other protocols would see nothing on a loopback
        # without packets; as a kernel without raw IP (TODO(#5)).
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    raise SyscallError(errno.ESOCKTNOSUPPORT)
