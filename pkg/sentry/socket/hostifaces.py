"""The host's network interfaces, for a sandbox with `--network=host`: as
netlink describes them, for the sandbox's NETLINK_ROUTE sockets, and the
interface ioctls (SIOCGIF*) that every socket answers.

The sandbox process takes this snapshot once, while it starts and before
its seccomp filter forbids netlink sockets: an RTM_GETLINK and an
RTM_GETADDR and an RTM_GETROUTE dump of the host's network namespace,
which it shares. The
sandbox's netlink sockets then answer dumps with these messages (netlink.py),
so getifaddrs(3), if_nameindex(3), `ip addr` and `ip route` see the
host's interfaces and routes.

Unlike Linux, the snapshot does not follow later changes on the host
(interfaces or addresses added afterwards are not listed; TODO(#7)). The
ioctls are asked of the host when they are made, through a host socket.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_NET_ADMIN
from pkg.sentry.socket import hostinet_allow, hostsock

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_NLMSG_ERROR = SK.NLMSG_ERROR
_NLMSG_DONE = SK.NLMSG_DONE
_I32 = struct.Struct("<i")


def _align(n: int) -> int:
    return (n + SK.NLMSG_ALIGNTO - 1) & ~(SK.NLMSG_ALIGNTO - 1)


def dump(kind: int, body: bytes) -> list[bytes]:
    """Returns the payloads of the messages a NETLINK_ROUTE dump request of
    kind (with payload body) gets from the host.

    Raises:
        OSError: the host refused the request or the socket.
    """
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        flags = SK.NLM_F_REQUEST | SK.NLM_F_DUMP
        length = SK.NLMSGHDR.size + len(body)
        s.sendto(SK.NLMSGHDR.pack(length, kind, flags, 1, 0) + body, (0, 0))
        out: list[bytes] = []
        while True:
            data = s.recv(1 << 16)
            pos = 0
            while pos + SK.NLMSGHDR.size <= len(data):
                mlen, mtype, _flags, _seq, _pid = SK.NLMSGHDR.unpack_from(data, pos)
                if mlen < SK.NLMSGHDR.size or pos + mlen > len(data):
                    break
                payload = data[pos + SK.NLMSGHDR.size : pos + mlen]
                if mtype == _NLMSG_DONE:
                    return out
                if mtype == _NLMSG_ERROR:
                    err = -_I32.unpack_from(payload)[0]
                    if err:
                        raise OSError(err, "netlink dump")
                else:
                    out.append(payload)
                pos += _align(mlen)
            if not data:
                return out
    finally:
        s.close()


# sizeof(struct rtmsg): a route dump's request payload.
_RTMSG_SIZE = 12


def snapshot() -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]:
    """Returns the host's (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE)
    payloads: its interfaces, addresses and routes."""
    links = dump(SK.RTM_GETLINK, bytes(SK.IFINFOMSG.size))
    addrs = dump(SK.RTM_GETADDR, bytes(SK.IFADDRMSG.size))
    routes = dump(SK.RTM_GETROUTE, bytes(_RTMSG_SIZE))
    return tuple(links), tuple(addrs), tuple(routes)


def host_link_name(body: bytes) -> bytes:
    """Returns the IFLA_IFNAME of an RTM_NEWLINK payload (b"" if none)."""
    pos = SK.IFINFOMSG.size
    while pos + SK.RTATTR.size <= len(body):
        alen, kind = SK.RTATTR.unpack_from(body, pos)
        if alen < SK.RTATTR.size:
            break
        if kind == SK.IFLA_IFNAME:
            return body[pos + SK.RTATTR.size : pos + alen].split(b"\0", 1)[0]
        pos += _align(alen)
    return b""


_IFREQ = SK.IFREQ_SIZE


def interface_ioctl(t: Task, cmd: int, arg: int, host_fd: int = -1) -> int:
    """Answers an interface ioctl (ifaces.is_interface_ioctl) with the
    host's interfaces.

    Args:
        t: the calling task, whose memory holds the struct ifreq or ifconf.
        cmd: the request.
        arg: its argument's address.
        host_fd: a host socket to ask through (hostinet's own); -1 for a
            temporary UDP socket, as for the ioctl on a unix socket.

    Raises:
        SyscallError: the host's errno (ENODEV for an unknown interface);
            EPERM, or EOPNOTSUPP for a task with CAP_NET_ADMIN, for requests
            that change an interface: the sandbox does not get to change
            the host's.
    """
    if cmd not in hostinet_allow.IFREQ_IOCTLS and cmd != SK.SIOCGIFCONF:
        if not t.creds.has_capability(CAP_NET_ADMIN):
            raise SyscallError(errno.EPERM)
        raise SyscallError(errno.EOPNOTSUPP)
    own = host_fd < 0
    try:
        if own:
            host_fd = hostsock.socket(
                SK.AF_INET, SK.SOCK_DGRAM | SK.SOCK_NONBLOCK | SK.SOCK_CLOEXEC, 0
            )
        if cmd == SK.SIOCGIFCONF:
            return _ifconf(t, arg, host_fd)
        req = t.copy_in(arg, _IFREQ)
        out = hostsock.ioctl(host_fd, cmd, req)
    except OSError as e:
        raise SyscallError(e.errno or errno.EIO) from None
    finally:
        if own and host_fd >= 0:
            os.close(host_fd)
    t.copy_out(arg, out)
    return 0


def _ifconf(t: Task, arg: int, host_fd: int) -> int:
    """SIOCGIFCONF: the host's entries, copied into the caller's buffer
    (dev_ifconf)."""
    length, buf = SK.IFCONF.unpack(t.copy_in(arg, SK.IFCONF.size))
    if buf == 0 or length <= 0:
        length = 0
    # Whole entries only, and no more than a sane number of them.
    length = min(length - length % _IFREQ, 256 * _IFREQ)
    out = hostsock.ioctl_ifconf(host_fd, length, SK.SIOCGIFCONF)
    if length == 0:
        used = int.from_bytes(out, "little", signed=True)
    else:
        used = len(out)
        if out:
            t.copy_out(buf, out)
    t.copy_out(arg, used.to_bytes(4, "little", signed=True))
    return 0
