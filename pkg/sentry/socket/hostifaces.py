"""The host's network interfaces as netlink describes them, for the
sandbox's NETLINK_ROUTE sockets under `--network=host`.

The sandbox process takes this snapshot once, while it starts and before
its seccomp filter forbids netlink sockets: an RTM_GETLINK and an
RTM_GETADDR dump of the host's network namespace, which it shares. The
sandbox's netlink sockets then answer dumps with these messages (netlink.py),
so getifaddrs(3), if_nameindex(3) and `ip addr` see the host's interfaces.

Unlike Linux, the snapshot does not follow later changes on the host
(interfaces or addresses added afterwards are not listed; TODO(#7)).
"""

from __future__ import annotations

import socket
import struct

from pkg.abi.linux import socket as SK

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


def snapshot() -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Returns the host's (RTM_NEWLINK payloads, RTM_NEWADDR payloads)."""
    links = dump(SK.RTM_GETLINK, bytes(SK.IFINFOMSG.size))
    addrs = dump(SK.RTM_GETADDR, bytes(SK.IFADDRMSG.size))
    return tuple(links), tuple(addrs)


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
