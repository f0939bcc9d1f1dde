"""The socket tables of /proc/net: dev, tcp, tcp6, udp, udp6 and unix, in
the layouts of net/core/net-procfs.c, net/ipv4/tcp_ipv4.c,
net/ipv6/tcp_ipv6.c, net/ipv4/udp.c and net/unix/af_unix.c, which netstat,
ss and ifconfig parse.

procfs calls these to fill its files; they only read socket state. Timers,
retransmissions and congestion figures, which a loopback without packets
does not have, are zero.

With host networking (hostinet.py) the TCP and UDP sockets are the host's;
the tables list them from what the host reports of each, and
/proc/net/dev names the host's interfaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import socket as SK
from pkg.sentry.socket import ifaces
from pkg.sentry.socket.hostifaces import host_link_name
from pkg.sentry.socket.hostinet import proc_net_rows
from pkg.sentry.socket.inet import InetSocket, is_mapped, sockets_of
from pkg.sentry.socket.socket import mu
from pkg.sentry.socket.transport import CONNECTED, LISTENING
from pkg.sentry.socket.unix import unix_sockets_of

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel

# TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h).
_TCP_ESTABLISHED = 1
_TCP_CLOSE = 7
_TCP_LISTEN = 10
# Lines of /proc/net/tcp are padded to this width (TMPSZ - 1).
_TCP_LINE = 149
_UDP_LINE = 127
# __SO_ACCEPTCON in /proc/net/unix's flags.
_SO_ACCEPTCON = 1 << 16
# Unix socket states there (SS_UNCONNECTED, SS_CONNECTED).
_SS_UNCONNECTED = 1
_SS_CONNECTED = 3


def net_dev(k: Kernel) -> bytes:
    """Renders /proc/net/dev: lo, or with host networking the host's
    interfaces as the sandbox found them at start (hostifaces.py), with no
    traffic counted (TODO(#7): the host's counters)."""
    names = [ifaces.LOOPBACK_NAME]
    if k.config.host_links:
        names = [host_link_name(body) for body in k.config.host_links]
    lines = [
        "Inter-|   Receive                                                |  Transmit",
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
        "packets errs drop fifo colls carrier compressed",
    ]
    zeros = " ".join(
        f"{0:>{w}}" for w in (7, 7, 4, 4, 4, 5, 10, 9, 8, 7, 4, 4, 4, 5, 7, 10)
    )
    for name in names:
        lines.append(f"{name.decode(errors='replace'):>6}: {zeros}")
    return ("\n".join(lines) + "\n").encode()


def _hex_addr(ip: bytes, v6: bool) -> str:
    """Formats an address as the kernel prints it: each 32-bit word in host
    (little-endian) order."""
    words = ip if v6 else ip[12:]
    return "".join(
        f"{int.from_bytes(words[i : i + 4], 'little'):08X}"
        for i in range(0, len(words), 4)
    )


def _inet_rows(k: Kernel, stype: int, family: int) -> list[tuple[InetSocket, int]]:
    rows = []
    for s in sockets_of(k, stype):
        if s.local is None:
            continue
        if family == SK.AF_INET and (
            s.family != SK.AF_INET or not is_mapped(s.local[0])
        ):
            continue
        if family == SK.AF_INET6 and s.family != SK.AF_INET6:
            continue
        if s.state == LISTENING:
            state = _TCP_LISTEN
        elif s.state == CONNECTED:
            state = _TCP_ESTABLISHED
        else:
            state = _TCP_CLOSE
        rows.append((s, state))
    return rows


def _inet_table(k: Kernel, stype: int, family: int) -> bytes:
    v6 = family == SK.AF_INET6
    tcp = stype == SK.SOCK_STREAM
    width = _TCP_LINE if tcp else _UDP_LINE
    if v6:
        header = (
            "  sl  local_address                         remote_address"
            "                        st tx_queue rx_queue tr tm->when retrnsmt"
            "   uid  timeout inode"
        )
    else:
        header = (
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when"
            " retrnsmt   uid  timeout inode"
        )
    out = [header if v6 else header.ljust(width)]
    with mu:
        rows = _inet_rows(k, stype, family)
        for i, (s, state) in enumerate(rows):
            assert s.local is not None
            remote = s.remote or (bytes(16), 0)
            if tcp and state != _TCP_ESTABLISHED:
                remote = (bytes(16), 0)
            peer = s.peer
            tx = peer.rq_bytes if tcp and peer is not None else 0
            rx = s.rq_bytes
            assert s.vd is not None
            attrs = s.vd.dentry.attrs
            line = (
                f"{i:4d}: {_hex_addr(s.local[0], v6)}:{s.local[1]:04X} "
                f"{_hex_addr(remote[0], v6)}:{remote[1]:04X} {state:02X} "
                f"{tx:08X}:{rx:08X} 00:00000000 00000000 {attrs.uid:5d} "
                f"{0:8d} {attrs.ino} 2 0000000000000000"
            )
            if tcp:
                line += " 20 4 0 10 -1"
            else:
                line += " 0"
            out.append(line if v6 else line.ljust(width))
    # With host networking, the inet sockets are host sockets.
    for i, row in enumerate(proc_net_rows(k, stype, family), start=len(out) - 1):
        line = (
            f"{i:4d}: {_hex_addr(row.local[0], v6)}:{row.local[1]:04X} "
            f"{_hex_addr(row.remote[0], v6)}:{row.remote[1]:04X} "
            f"{row.state:02X} {row.tx_queue:08X}:{row.rx_queue:08X} "
            f"00:00000000 00000000 {row.uid:5d} {0:8d} {row.ino} 2 "
            "0000000000000000"
        )
        line += " 20 4 0 10 -1" if tcp else " 0"
        out.append(line if v6 else line.ljust(width))
    return ("\n".join(out) + "\n").encode()


def net_tcp(k: Kernel) -> bytes:
    """Renders /proc/net/tcp."""
    return _inet_table(k, SK.SOCK_STREAM, SK.AF_INET)


def net_tcp6(k: Kernel) -> bytes:
    """Renders /proc/net/tcp6."""
    return _inet_table(k, SK.SOCK_STREAM, SK.AF_INET6)


def net_udp(k: Kernel) -> bytes:
    """Renders /proc/net/udp."""
    return _inet_table(k, SK.SOCK_DGRAM, SK.AF_INET)


def net_udp6(k: Kernel) -> bytes:
    """Renders /proc/net/udp6."""
    return _inet_table(k, SK.SOCK_DGRAM, SK.AF_INET6)


def net_unix(k: Kernel) -> bytes:
    """Renders /proc/net/unix; abstract names start with "@" as Linux
    prints them."""
    out = ["Num       RefCount Protocol Flags    Type St Inode Path"]
    with mu:
        for s in unix_sockets_of(k):
            if s.closed:
                continue
            flags = _SO_ACCEPTCON if s.state == LISTENING else 0
            connected = s.peer is not None and (
                s.state == CONNECTED or not s.connection_based
            )
            st = _SS_CONNECTED if connected else _SS_UNCONNECTED
            assert s.vd is not None
            line = (
                f"0000000000000000: 00000002 00000000 {flags:08X} "
                f"{s.stype:04X} {st:02X} {s.vd.dentry.attrs.ino:5d}"
            )
            if s.addr is not None:
                name = s.addr[2:]
                if name[:1] == b"\0":
                    name = b"@" + name[1:]
                else:
                    name = name.rstrip(b"\0")
                line += " " + name.decode(errors="replace")
            out.append(line)
    return ("\n".join(out) + "\n").encode()
