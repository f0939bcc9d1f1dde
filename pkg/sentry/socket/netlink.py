"""AF_NETLINK sockets of protocol NETLINK_ROUTE, enough for getifaddrs(3),
if_nameindex(3) and `ip addr`/`ip link` (net/netlink/af_netlink.c,
net/core/rtnetlink.c).

The sandbox's network is only the loopback interface, so the kernel side
is a table: an RTM_GETLINK dump describes "lo", an RTM_GETADDR dump its
127.0.0.1/8 and ::1/128. With host networking the table is instead the
host's interfaces and addresses as they were when the sandbox started
(hostifaces.py), routes included. A request is
answered as it is sent: the replies are queued on the socket as datagrams
of at most a page each (as netlink_dump sizes them), which recvmsg hands
out like any datagram (MSG_PEEK, MSG_TRUNC).

Not modelled (each answered as a kernel without the feature would be):
multicast groups are remembered but never deliver (nothing changes);
unicast to other user sockets (nl_pid != 0) is refused; route, neighbour
and rule dumps are empty; requests that change the configuration fail
with EPERM without CAP_NET_ADMIN and EOPNOTSUPP with it. Other netlink
protocols (NETLINK_KOBJECT_UEVENT, NETLINK_AUDIT...) fail with
EPROTONOSUPPORT, as when their kernel side is not loaded.
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
from pkg.sentry.kernel.credentials import CAP_NET_ADMIN
from pkg.sentry.kernel.waiter import (
    EVENT_IN,
    EVENT_OUT,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
)
from pkg.sentry.socket import ifaces
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

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_KERNEL_ADDR = SK.SOCKADDR_NL.pack(SK.AF_NETLINK, 0, 0, 0)
_NETLINK_OPTIONS = frozenset(range(1, 13))
# struct ifa_cacheinfo of a permanent address: preferred and valid
# lifetimes infinite, creation and update times 0.
_FOREVER = struct.pack("<IIII", 0xFFFFFFFF, 0xFFFFFFFF, 0, 0)


def _align(n: int) -> int:
    return (n + SK.NLMSG_ALIGNTO - 1) & ~(SK.NLMSG_ALIGNTO - 1)


def _attr(kind: int, data: bytes) -> bytes:
    body = SK.RTATTR.pack(SK.RTATTR.size + len(data), kind) + data
    return body.ljust(_align(len(body)), b"\0")


def _message(kind: int, flags: int, seq: int, portid: int, body: bytes) -> bytes:
    length = SK.NLMSGHDR.size + len(body)
    msg = SK.NLMSGHDR.pack(length, kind, flags, seq, portid) + body
    return msg.ljust(_align(len(msg)), b"\0")


def _link_body() -> bytes:
    """RTM_NEWLINK's payload for lo."""
    body = SK.IFINFOMSG.pack(
        SK.AF_UNSPEC,
        SK.ARPHRD_LOOPBACK,
        ifaces.LOOPBACK_INDEX,
        ifaces.LOOPBACK_LINK_FLAGS,
        0,
    )
    body += _attr(SK.IFLA_IFNAME, ifaces.LOOPBACK_NAME + b"\0")
    body += _attr(SK.IFLA_TXQLEN, _U32.pack(ifaces.LOOPBACK_TXQLEN))
    body += _attr(SK.IFLA_OPERSTATE, bytes([SK.IF_OPER_UNKNOWN]))
    body += _attr(SK.IFLA_LINKMODE, b"\0")
    body += _attr(SK.IFLA_MTU, _U32.pack(ifaces.LOOPBACK_MTU))
    body += _attr(SK.IFLA_QDISC, b"noqueue\0")
    body += _attr(SK.IFLA_GROUP, _U32.pack(0))
    body += _attr(SK.IFLA_ADDRESS, bytes(6))
    body += _attr(SK.IFLA_BROADCAST, bytes(6))
    return body


def _addr_bodies(family: int) -> list[bytes]:
    """RTM_NEWADDR payloads for lo's addresses of family (AF_UNSPEC: all)."""
    out = []
    if family in (SK.AF_UNSPEC, SK.AF_INET):
        body = SK.IFADDRMSG.pack(
            SK.AF_INET,
            ifaces.LOOPBACK_V4_PREFIX,
            SK.IFA_F_PERMANENT,
            SK.RT_SCOPE_HOST,
            ifaces.LOOPBACK_INDEX,
        )
        body += _attr(SK.IFA_ADDRESS, ifaces.LOOPBACK_V4)
        body += _attr(SK.IFA_LOCAL, ifaces.LOOPBACK_V4)
        body += _attr(SK.IFA_LABEL, ifaces.LOOPBACK_NAME + b"\0")
        body += _attr(SK.IFA_FLAGS, _U32.pack(SK.IFA_F_PERMANENT))
        body += _attr(SK.IFA_CACHEINFO, _FOREVER)
        out.append(body)
    if family in (SK.AF_UNSPEC, SK.AF_INET6):
        body = SK.IFADDRMSG.pack(
            SK.AF_INET6,
            ifaces.LOOPBACK_V6_PREFIX,
            SK.IFA_F_PERMANENT,
            SK.RT_SCOPE_HOST,
            ifaces.LOOPBACK_INDEX,
        )
        body += _attr(SK.IFA_ADDRESS, ifaces.LOOPBACK_V6)
        body += _attr(SK.IFA_FLAGS, _U32.pack(SK.IFA_F_PERMANENT))
        body += _attr(SK.IFA_CACHEINFO, _FOREVER)
        out.append(body)
    return out


def _link_matches(req: bytes) -> bool:
    """Reports whether an RTM_GETLINK request (its payload) names lo, by
    index or by IFLA_IFNAME."""
    if len(req) < SK.IFINFOMSG.size:
        return False
    index = SK.IFINFOMSG.unpack_from(req)[2]
    if index:
        return index == ifaces.LOOPBACK_INDEX
    pos = SK.IFINFOMSG.size
    while pos + SK.RTATTR.size <= len(req):
        alen, kind = SK.RTATTR.unpack_from(req, pos)
        if alen < SK.RTATTR.size:
            break
        if kind == SK.IFLA_IFNAME:
            name = req[pos + SK.RTATTR.size : pos + alen].split(b"\0", 1)[0]
            return name == ifaces.LOOPBACK_NAME
        pos += _align(alen)
    return False


# The most bytes of messages one reply datagram carries: a dump goes out
# in datagrams no larger than netlink_dump's NLMSG_GOODSIZE (a page less
# the skb overhead), which is what receivers such as glibc's, with a
# 4096-byte buffer, rely on (they fail on MSG_TRUNC).
_DUMP_CHUNK = 3776


def _datagrams(reply: bytes) -> list[bytes]:
    """Splits a reply into datagrams of whole messages, each at most
    _DUMP_CHUNK bytes unless one message alone is longer."""
    out: list[bytes] = []
    start = pos = 0
    while pos + SK.NLMSGHDR.size <= len(reply):
        length = _align(SK.NLMSGHDR.unpack_from(reply, pos)[0])
        if length < SK.NLMSGHDR.size:
            break
        if pos > start and pos + length - start > _DUMP_CHUNK:
            out.append(reply[start:pos])
            start = pos
        pos += length
    if pos > start:
        out.append(reply[start:pos])
    return out


def _link_bodies(t: Task) -> list[bytes]:
    """Returns the RTM_NEWLINK payloads of the sandbox's interfaces: the
    host's (hostifaces.py) with host networking, else lo's."""
    host = t.kernel.config.host_links
    return list(host) if host else [_link_body()]


def _addr_bodies_of(t: Task, family: int) -> list[bytes]:
    """Returns the RTM_NEWADDR payloads of family (AF_UNSPEC: all)."""
    host = t.kernel.config.host_addrs
    if not host:
        return _addr_bodies(family)
    return [b for b in host if family == SK.AF_UNSPEC or (b and b[0] == family)]


def _find_link(req: bytes, bodies: list[bytes]) -> bytes | None:
    """Returns the payload of the interface an RTM_GETLINK request names,
    by index or by IFLA_IFNAME, or None."""
    if len(req) < SK.IFINFOMSG.size:
        return None
    index = SK.IFINFOMSG.unpack_from(req)[2]
    name = None
    if not index:
        for kind, data in _attrs(req, SK.IFINFOMSG.size):
            if kind == SK.IFLA_IFNAME:
                name = data.split(b"\0", 1)[0]
        if name is None:
            return None
    for body in bodies:
        if len(body) < SK.IFINFOMSG.size:
            continue
        if index:
            if SK.IFINFOMSG.unpack_from(body)[2] == index:
                return body
            continue
        for kind, data in _attrs(body, SK.IFINFOMSG.size):
            if kind == SK.IFLA_IFNAME and data.split(b"\0", 1)[0] == name:
                return body
    return None


def _attrs(payload: bytes, fixed: int) -> list[tuple[int, bytes]]:
    """Returns the (type, data) attributes after a fixed header."""
    out = []
    pos = fixed
    while pos + SK.RTATTR.size <= len(payload):
        alen, kind = SK.RTATTR.unpack_from(payload, pos)
        if alen < SK.RTATTR.size or pos + alen > len(payload):
            break
        out.append((kind & 0x3FFF, payload[pos + SK.RTATTR.size : pos + alen]))
        pos += _align(alen)
    return out


def _change(kind: int, flags: int, payload: bytes) -> int:
    """Answers a request to change the configuration (by a holder of
    CAP_NET_ADMIN) with its errno: 0 for changes that leave everything as
    it is, as bringing lo up (`ip link set lo up`) or adding an address it
    has (EEXIST, as Linux answers); EOPNOTSUPP for real changes, which are
    not modelled (TODO(#5))."""
    if kind in (SK.RTM_NEWLINK, SK.RTM_SETLINK) and _link_matches(payload):
        _fam, _type, _index, ifi_flags, change = SK.IFINFOMSG.unpack_from(payload)
        if change & ~SK.IFF_UP or (change & SK.IFF_UP and not ifi_flags & SK.IFF_UP):
            return errno.EOPNOTSUPP
        harmless = {SK.IFLA_IFNAME, 29}  # IFLA_EXT_MASK
        if any(a not in harmless for a, _ in _attrs(payload, SK.IFINFOMSG.size)):
            return errno.EOPNOTSUPP
        return 0
    if kind == SK.RTM_NEWADDR and len(payload) >= SK.IFADDRMSG.size:
        fam, prefix, _f, _scope, index = SK.IFADDRMSG.unpack_from(payload)
        local = dict(_attrs(payload, SK.IFADDRMSG.size))
        addr = local.get(SK.IFA_LOCAL) or local.get(SK.IFA_ADDRESS)
        have = {
            SK.AF_INET: (ifaces.LOOPBACK_V4, ifaces.LOOPBACK_V4_PREFIX),
            SK.AF_INET6: (ifaces.LOOPBACK_V6, ifaces.LOOPBACK_V6_PREFIX),
        }.get(fam)
        if index == ifaces.LOOPBACK_INDEX and have == (addr, prefix):
            return errno.EEXIST if flags & SK.NLM_F_EXCL else 0
    return errno.EOPNOTSUPP


class NetlinkSocket(SocketFD):
    """NetlinkSocket is an AF_NETLINK NETLINK_ROUTE socket.

    Attributes:
        portid: the bound port id (0: unbound).
        groups: the multicast groups bound or joined (never delivered).
        dst: connect's destination (portid, groups).
        rq: queued reply datagrams.
    """

    __slots__ = ("dst", "groups", "kernel", "portid", "rq")

    def __init__(self, t: Task, stype: int, flags: int) -> None:
        super().__init__(t, SK.AF_NETLINK, stype, SK.NETLINK_ROUTE, flags)
        self.kernel = t.kernel
        self.portid = 0
        self.groups = 0
        self.dst = (0, 0)
        self.rq: collections.deque[bytes] = collections.deque()

    # Addresses.

    @staticmethod
    def _parse(addr: bytes) -> tuple[int, int]:
        if len(addr) < SK.SOCKADDR_NL.size:
            raise SyscallError(errno.EINVAL)
        fam, _pad, pid, groups = SK.SOCKADDR_NL.unpack_from(addr)
        if fam != SK.AF_NETLINK:
            raise SyscallError(errno.EINVAL)
        return pid, groups

    def _autobind_locked(self, t: Task) -> None:
        """Takes the process's id as port id, or a free negative one
        (netlink_autobind)."""
        if self.portid:
            return
        used = _bound_ports(self.kernel)
        candidate = t.pid
        if candidate in used:
            candidate = -4096 & 0xFFFFFFFF
            while candidate in used:
                candidate -= 1
        self.portid = candidate
        used.add(candidate)

    def bind(self, t: Task, addr: bytes) -> None:
        pid, groups = self._parse(addr)
        with mu:
            if self.portid:
                if pid and pid != self.portid:
                    raise SyscallError(errno.EINVAL)
            elif pid:
                used = _bound_ports(self.kernel)
                if pid in used:
                    raise SyscallError(errno.EADDRINUSE)
                used.add(pid)
                self.portid = pid
            else:
                self._autobind_locked(t)
            self.groups = groups

    def connect(self, t: Task, addr: bytes) -> None:
        if len(addr) >= 2 and struct.unpack_from("<H", addr)[0] == SK.AF_UNSPEC:
            with mu:
                self.dst = (0, 0)
            return
        pid, groups = self._parse(addr)
        with mu:
            self._autobind_locked(t)
            self.dst = (pid, groups)

    def getsockname(self, t: Task) -> bytes:
        with mu:
            return SK.SOCKADDR_NL.pack(SK.AF_NETLINK, 0, self.portid, self.groups)

    def getpeername(self, t: Task) -> bytes:
        with mu:
            pid, groups = self.dst
            return SK.SOCKADDR_NL.pack(SK.AF_NETLINK, 0, pid, groups)

    def release(self) -> None:
        with mu:
            if self.portid:
                _bound_ports(self.kernel).discard(self.portid)
            self.rq.clear()

    def deliver(self, dgram: bytes) -> None:
        """Queues a datagram from the kernel that no request asked for (an
        mq_notify SIGEV_THREAD cookie)."""
        with mu:
            self.rq.append(dgram)
        self.wq.notify(EVENT_IN | EVENT_RDNORM)

    # Requests.

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
            pid, _groups = self._parse(to)
            if pid != 0:
                # TODO(#5): unicast between user netlink sockets.
                raise SyscallError(errno.ECONNREFUSED)
        with mu:
            self._autobind_locked(t)
            portid = self.portid
        replies = []
        pos = 0
        while pos + SK.NLMSGHDR.size <= len(data):
            length, kind, nflags, seq, _pid = SK.NLMSGHDR.unpack_from(data, pos)
            if length < SK.NLMSGHDR.size or length > len(data) - pos:
                break
            reply = self._handle(t, kind, nflags, seq, portid, data[pos : pos + length])
            replies.extend(_datagrams(reply))
            pos += _align(length)
        if replies:
            with mu:
                for r in replies:
                    self.rq.append(r)
            self.wq.notify(EVENT_IN | EVENT_RDNORM)
        return len(data)

    def _handle(
        self, t: Task, kind: int, flags: int, seq: int, portid: int, msg: bytes
    ) -> bytes:
        """Answers one request (rtnetlink_rcv_msg); returns the reply
        datagram, or b"" for none."""
        if not flags & SK.NLM_F_REQUEST:
            return b""
        payload = msg[SK.NLMSGHDR.size :]
        err = 0
        out = b""
        if kind < SK.NLMSG_MIN_TYPE:
            pass
        elif kind == SK.RTM_GETLINK:
            bodies = _link_bodies(t)
            if flags & SK.NLM_F_DUMP == SK.NLM_F_DUMP:
                for body in bodies:
                    out += _message(SK.RTM_NEWLINK, SK.NLM_F_MULTI, seq, portid, body)
                return out + self._done(seq, portid)
            found = _find_link(payload, bodies)
            if found is not None:
                out = _message(SK.RTM_NEWLINK, 0, seq, portid, found)
            else:
                err = errno.ENODEV
        elif kind == SK.RTM_GETADDR:
            if flags & SK.NLM_F_DUMP != SK.NLM_F_DUMP:
                err = errno.EOPNOTSUPP
            else:
                family = payload[0] if payload else SK.AF_UNSPEC
                for body in _addr_bodies_of(t, family):
                    out += _message(SK.RTM_NEWADDR, SK.NLM_F_MULTI, seq, portid, body)
                return out + self._done(seq, portid)
        elif (
            kind == SK.RTM_GETROUTE
            and flags & SK.NLM_F_DUMP == SK.NLM_F_DUMP
            and t.kernel.config.host_routes
        ):
            family = payload[0] if payload else SK.AF_UNSPEC
            for body in t.kernel.config.host_routes:
                if family in (SK.AF_UNSPEC, body[0]):
                    out += _message(SK.RTM_NEWROUTE, SK.NLM_F_MULTI, seq, portid, body)
            return out + self._done(seq, portid)
        elif kind % 4 == 2 and flags & SK.NLM_F_DUMP == SK.NLM_F_DUMP:
            # Every RTM_GET* type is 2 modulo 4. Routes, neighbours, rules,
            # queueing disciplines...: nothing to list.
            # TODO(#5): the local routes of lo are not listed.
            return self._done(seq, portid)
        elif kind % 4 == 2:
            # A GET of something this sandbox has none of.
            err = errno.EOPNOTSUPP
        elif not t.creds.has_capability(CAP_NET_ADMIN):
            err = errno.EPERM
        else:
            err = _change(kind, flags, payload)
        if err or flags & SK.NLM_F_ACK:
            # The error (or acknowledgement) quotes the request: whole for
            # an error, its header only for an acknowledgement.
            quoted = msg if err else msg[: SK.NLMSGHDR.size]
            out += _message(SK.NLMSG_ERROR, 0, seq, portid, _I32.pack(-err) + quoted)
        return out

    @staticmethod
    def _done(seq: int, portid: int) -> bytes:
        return _message(SK.NLMSG_DONE, SK.NLM_F_MULTI, seq, portid, _I32.pack(0))

    # Receiving.

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        peek = bool(flags & SK.MSG_PEEK)
        deadline = deadline_of(self.rcvtimeo)
        while True:
            with mu:
                if self.rq:
                    dgram = self.rq[0] if peek else self.rq.popleft()
                    break
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN)
                self.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                self.wq.unregister(entry)
        data = dgram[:length]
        out_flags = SK.MSG_TRUNC if len(dgram) > length else 0
        n = len(dgram) if flags & SK.MSG_TRUNC else len(data)
        return RecvResult(data, n, out_flags, _KERNEL_ADDR)

    def readiness(self, mask: int) -> int:
        ready = EVENT_OUT | EVENT_WRNORM
        with mu:
            if self.rq:
                ready |= EVENT_IN | EVENT_RDNORM
        return ready & mask

    def socket_ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with mu:
                n = len(self.rq[0]) if self.rq else 0
            t.mm.write_i32(arg, n)
            return 0
        raise SyscallError(errno.ENOTTY)

    # Options.

    def getsockopt(self, t: Task, level: int, name: int) -> bytes:
        if level == SK.SOL_NETLINK:
            if name not in _NETLINK_OPTIONS:
                raise SyscallError(errno.ENOPROTOOPT)
            return self.opts.get(-name, int_bytes(0))
        return super().getsockopt(t, level, name)

    def setsockopt(self, t: Task, level: int, name: int, val: bytes) -> None:
        if level == SK.SOL_NETLINK:
            if name not in _NETLINK_OPTIONS:
                raise SyscallError(errno.ENOPROTOOPT)
            # Netlink's own options are kept apart from SOL_SOCKET's by a
            # negative key.
            self.opts[-name] = int_bytes(int(bool(int_opt(val))))
            return
        super().setsockopt(t, level, name, val)


_ports: weakref.WeakKeyDictionary[Kernel, set[int]] = weakref.WeakKeyDictionary()


def _bound_ports(k: Kernel) -> set[int]:
    """Returns the netlink port ids in use in k (the caller holds mu)."""
    ports = _ports.get(k)
    if ports is None:
        ports = _ports[k] = set()
    return ports


def new_netlink_socket(t: Task, stype: int, protocol: int, flags: int) -> SocketFD:
    """Makes an AF_NETLINK socket (netlink_create).

    Raises:
        SyscallError: ESOCKTNOSUPPORT for a type other than SOCK_RAW or
            SOCK_DGRAM; EPROTONOSUPPORT for protocols other than
            NETLINK_ROUTE, as a kernel without them.
    """
    if stype not in (SK.SOCK_RAW, SK.SOCK_DGRAM):
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    if protocol != SK.NETLINK_ROUTE:
        raise SyscallError(errno.EPROTONOSUPPORT)
    return NetlinkSocket(t, stype, flags)
