"""Raw ICMP and ICMPv6 sockets on loopback, enough for ping
(net/ipv4/raw.c, net/ipv6/raw.c, net/ipv4/icmp.c).

With only a loopback interface, every ICMP packet a raw socket sends comes
straight back: the packet itself (every raw socket of the protocol sees
every packet that arrives) and, for an echo request, the echo reply the
kernel answers it with. IPv4 raw sockets receive packets with their IP
header, as Linux gives them; IPv6 ones without.

Unlike Linux, nothing but ICMP echo is answered, IP_HDRINCL is not
supported (TODO(#5)), and ICMP_FILTER/ICMP6_FILTER are accepted but not
applied (ping filters replies itself).
"""

from __future__ import annotations

import collections
import struct
import weakref
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import (
    EVENT_IN,
    EVENT_OUT,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
)
from pkg.sentry.socket.socket import (
    ControlMessages,
    RecvResult,
    SocketFD,
    block,
    deadline_of,
    int_bytes,
    int_opt,
    mu,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

_ICMP_ECHO_REPLY = 0
_ICMP_ECHO = 8
_ICMPV6_ECHO_REQUEST = 128
_ICMPV6_ECHO_REPLY = 129
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_DEFAULT_TTL = 64
# Raw sockets hold at most this many unread bytes (their SO_RCVBUF).
_MAX_QUEUED = 212992

_sockets: weakref.WeakKeyDictionary[Kernel, weakref.WeakSet[IcmpSocket]] = (
    weakref.WeakKeyDictionary()
)


def checksum(data: bytes) -> int:
    """Returns the Internet checksum of data (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _with_checksum(icmp: bytes, pseudo: bytes = b"") -> bytes:
    body = icmp[:2] + b"\0\0" + icmp[4:]
    return icmp[:2] + struct.pack("!H", checksum(pseudo + body)) + icmp[4:]


def _v6_pseudo(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!I3xB", length, SK.IPPROTO_ICMPV6)


class IcmpSocket(SocketFD):
    """IcmpSocket is a SOCK_RAW socket of IPPROTO_ICMP (AF_INET) or
    IPPROTO_ICMPV6 (AF_INET6).

    Attributes:
        rq: received packets with their source address.
        remote: connect's destination address, or None.
    """

    __slots__ = ("kernel", "local", "opts2", "remote", "rq")

    def __init__(self, t: Task, family: int, protocol: int, flags: int) -> None:
        super().__init__(t, family, SK.SOCK_RAW, protocol, flags)
        self.kernel = t.kernel
        self.rq: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.remote: bytes | None = None
        self.local: bytes | None = None
        # IP-level options that only need remembering.
        self.opts2: dict[tuple[int, int], bytes] = {}
        with mu:
            group = _sockets.get(t.kernel)
            if group is None:
                group = _sockets[t.kernel] = weakref.WeakSet()
            group.add(self)

    # Addresses: the port of a raw socket's address is unused.

    def _parse(self, addr: bytes) -> bytes:
        if self.family == SK.AF_INET:
            if len(addr) < SK.SOCKADDR_IN.size:
                raise SyscallError(errno.EINVAL)
            fam, _port, ip = SK.SOCKADDR_IN.unpack_from(addr)
            if fam not in (SK.AF_INET, SK.AF_UNSPEC):
                raise SyscallError(errno.EAFNOSUPPORT)
            return ip
        if len(addr) < SK.SOCKADDR_IN6.size:
            raise SyscallError(errno.EINVAL)
        fam, _port, _flow, ip, _scope = SK.SOCKADDR_IN6.unpack_from(addr)
        if fam != SK.AF_INET6:
            raise SyscallError(errno.EAFNOSUPPORT)
        return ip

    def _format(self, ip: bytes) -> bytes:
        if self.family == SK.AF_INET:
            return SK.SOCKADDR_IN.pack(SK.AF_INET, b"\0\0", ip)
        return SK.SOCKADDR_IN6.pack(SK.AF_INET6, b"\0\0", 0, ip, 0)

    def _any(self) -> bytes:
        return bytes(4) if self.family == SK.AF_INET else bytes(16)

    def _loopback(self, ip: bytes) -> bool:
        if self.family == SK.AF_INET:
            return ip[0] == 127 or ip == bytes(4)
        return ip in (bytes(15) + b"\x01", bytes(16))

    def bind(self, t: Task, addr: bytes) -> None:
        ip = self._parse(addr)
        if not self._loopback(ip):
            raise SyscallError(errno.EADDRNOTAVAIL)
        with mu:
            self.local = ip

    def connect(self, t: Task, addr: bytes) -> None:
        if len(addr) >= 2 and struct.unpack_from("<H", addr)[0] == SK.AF_UNSPEC:
            with mu:
                self.remote = None
            return
        ip = self._parse(addr)
        if not self._loopback(ip):
            raise SyscallError(errno.ENETUNREACH)
        with mu:
            self.remote = ip

    def getsockname(self, t: Task) -> bytes:
        with mu:
            return self._format(self.local or self._any())

    def getpeername(self, t: Task) -> bytes:
        with mu:
            if self.remote is None:
                raise SyscallError(errno.ENOTCONN)
            return self._format(self.remote)

    # Sending: the packet and the kernel's answer come back at once.

    def sendmsg(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
    ) -> int:
        control.release()
        if to is not None:
            dst = self._parse(to)
        elif self.remote is not None:
            dst = self.remote
        else:
            raise SyscallError(errno.EDESTADDRREQ)
        if not self._loopback(dst):
            raise SyscallError(errno.ENETUNREACH)
        if self.family == SK.AF_INET:
            if dst == bytes(4):
                dst = bytes([127, 0, 0, 1])
            src = bytes([127, 0, 0, 1])
        else:
            dst = bytes(15) + b"\x01"
            src = dst
        if len(data) > 65535 - 40:
            raise SyscallError(errno.EMSGSIZE)
        if len(data) < 4:
            # Too short for an ICMP header: sent, answered by nobody.
            return len(data)
        if self.family == SK.AF_INET6:
            # The kernel fills in ICMPv6 checksums (RFC 3542).
            data = _with_checksum(data, _v6_pseudo(src, dst, len(data)))
        _deliver(self.kernel, self.family, self.protocol, src, dst, data)
        answer = _answer(self.family, src, dst, data)
        if answer is not None:
            _deliver(self.kernel, self.family, self.protocol, dst, src, answer)
        return len(data)

    # Receiving.

    def push_locked(self, src: bytes, packet: bytes) -> bool:
        """Queues a packet; False when the receive buffer is full."""
        if sum(len(p) for _, p in self.rq) + len(packet) > _MAX_QUEUED:
            return False
        self.rq.append((src, packet))
        return True

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        if flags & SK.MSG_ERRQUEUE:
            raise SyscallError(errno.EAGAIN)
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        peek = bool(flags & SK.MSG_PEEK)
        deadline = deadline_of(self.rcvtimeo)
        while True:
            with mu:
                if self.rq:
                    src, packet = self.rq[0] if peek else self.rq.popleft()
                    break
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN)
                self.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                self.wq.unregister(entry)
        data = packet[:length]
        out_flags = SK.MSG_TRUNC if len(packet) > length else 0
        n = len(packet) if flags & SK.MSG_TRUNC else len(data)
        return RecvResult(data, n, out_flags, self._format(src))

    def readiness(self, mask: int) -> int:
        ready = EVENT_OUT | EVENT_WRNORM
        with mu:
            if self.rq:
                ready |= EVENT_IN | EVENT_RDNORM
        return ready & mask

    def socket_ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with mu:
                n = len(self.rq[0][1]) if self.rq else 0
            t.mm.write_i32(arg, n)
            return 0
        raise SyscallError(errno.ENOTTY)

    # Options: SOL_RAW/SOL_ICMPV6 filters, IP and IPv6 options are kept.

    def getsockopt(self, t: Task, level: int, name: int) -> bytes:
        if level == SK.SOL_SOCKET:
            return self.get_socket_option(t, name)
        if level == SK.SOL_IP and name == SK.IP_TTL:
            return self.opts2.get((level, name), int_bytes(_DEFAULT_TTL))
        if level == SK.SOL_IPV6 and name == SK.IPV6_UNICAST_HOPS:
            return self.opts2.get((level, name), int_bytes(_DEFAULT_TTL))
        if (level, name) in self.opts2:
            return self.opts2[(level, name)]
        if level in (SK.SOL_IP, SK.SOL_IPV6, SK.SOL_RAW, SK.IPPROTO_ICMPV6):
            return int_bytes(0)
        raise SyscallError(errno.ENOPROTOOPT)

    def setsockopt(self, t: Task, level: int, name: int, val: bytes) -> None:
        if level == SK.SOL_SOCKET:
            self.set_socket_option(t, name, val)
            return
        if level == SK.SOL_IP and name == SK.IP_HDRINCL and int_opt(val):
            # Sending whole IP packets is not modelled.
            raise SyscallError(errno.EOPNOTSUPP)
        if level in (SK.SOL_IP, SK.SOL_IPV6, SK.SOL_RAW, SK.IPPROTO_ICMPV6):
            self.opts2[(level, name)] = bytes(val[:64])
            return
        raise SyscallError(errno.ENOPROTOOPT)

    def release(self) -> None:
        with mu:
            self.rq.clear()


def _answer(family: int, src: bytes, dst: bytes, icmp: bytes) -> bytes | None:
    """Returns the kernel's reply to an ICMP packet, or None."""
    if family == SK.AF_INET and icmp[0] == _ICMP_ECHO and icmp[1] == 0:
        return _with_checksum(bytes([_ICMP_ECHO_REPLY]) + icmp[1:])
    if family == SK.AF_INET6 and icmp[0] == _ICMPV6_ECHO_REQUEST and icmp[1] == 0:
        reply = bytes([_ICMPV6_ECHO_REPLY]) + icmp[1:]
        return _with_checksum(reply, _v6_pseudo(dst, src, len(reply)))
    return None


def _deliver(
    k: Kernel, family: int, protocol: int, src: bytes, dst: bytes, icmp: bytes
) -> None:
    """Hands a packet from src to dst to every raw socket of the protocol."""
    packet = icmp
    if family == SK.AF_INET:
        header = _IPV4_HEADER.pack(
            0x45,
            0,
            20 + len(icmp),
            0,
            0x4000,
            _DEFAULT_TTL,
            SK.IPPROTO_ICMP,
            0,
            src,
            dst,
        )
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        packet = header + icmp
    woken = []
    with mu:
        for s in list(_sockets.get(k, ())):
            if s.family != family or s.protocol != protocol:
                continue
            if s.remote is not None and s.remote != src:
                continue
            if s.local is not None and s.local not in (dst, bytes(len(dst))):
                continue
            if s.push_locked(src, packet):
                woken.append(s)
    for s in woken:
        s.wq.notify(EVENT_IN | EVENT_RDNORM)


def new_icmp_socket(t: Task, family: int, protocol: int, flags: int) -> IcmpSocket:
    """Makes a raw ICMP (AF_INET) or ICMPv6 (AF_INET6) socket; the caller
    has checked CAP_NET_RAW and the protocol."""
    return IcmpSocket(t, family, protocol, flags)
