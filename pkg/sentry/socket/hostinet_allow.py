"""What hostinet lets an application reach of a host socket: the options,
message flags, control messages and ioctls passed to the host.

Everything else is answered by the sentry or refused. The lists are kept
to what ordinary network programs use and what changes only the socket
itself: nothing that loads code into the host kernel (SO_ATTACH_FILTER,
TCP_ULP), that takes pointers the host would follow (SO_ATTACH_BPF), or
that needs privileges the sentry has dropped. runsc/boot/filter builds the
sentry's seccomp rules for setsockopt and ioctl from these same tables, so
the filter allows exactly what hostinet passes on.
"""

from __future__ import annotations

from pkg.abi.linux import ioctl as I
from pkg.abi.linux import socket as SK

# The levels options are passed on at.
LEVELS = (SK.SOL_SOCKET, SK.SOL_IP, SK.SOL_IPV6, SK.SOL_TCP, SK.SOL_UDP)

_INT = 4

# (level, name) to the size of the value getsockopt asks the host for;
# the syscall layer cuts it to the caller's optlen. A size of 0 marks an
# option that can only be set.
OPTIONS: dict[tuple[int, int], int] = {
    (SK.SOL_SOCKET, SK.SO_REUSEADDR): _INT,
    (SK.SOL_SOCKET, SK.SO_REUSEPORT): _INT,
    (SK.SOL_SOCKET, SK.SO_TYPE): _INT,
    (SK.SOL_SOCKET, SK.SO_ERROR): _INT,
    (SK.SOL_SOCKET, SK.SO_DONTROUTE): _INT,
    (SK.SOL_SOCKET, SK.SO_BROADCAST): _INT,
    (SK.SOL_SOCKET, SK.SO_SNDBUF): _INT,
    (SK.SOL_SOCKET, SK.SO_RCVBUF): _INT,
    (SK.SOL_SOCKET, SK.SO_KEEPALIVE): _INT,
    (SK.SOL_SOCKET, SK.SO_OOBINLINE): _INT,
    (SK.SOL_SOCKET, SK.SO_NO_CHECK): _INT,
    (SK.SOL_SOCKET, SK.SO_PRIORITY): _INT,
    (SK.SOL_SOCKET, SK.SO_LINGER): SK.LINGER.size,
    (SK.SOL_SOCKET, SK.SO_RCVLOWAT): _INT,
    (SK.SOL_SOCKET, SK.SO_SNDLOWAT): _INT,
    (SK.SOL_SOCKET, SK.SO_TIMESTAMP_OLD): _INT,
    (SK.SOL_SOCKET, 35): _INT,  # SO_TIMESTAMPNS_OLD
    (SK.SOL_SOCKET, SK.SO_ACCEPTCONN): _INT,
    (SK.SOL_SOCKET, SK.SO_PROTOCOL): _INT,
    (SK.SOL_SOCKET, SK.SO_DOMAIN): _INT,
    (SK.SOL_SOCKET, SK.SO_PASSCRED): _INT,
    (SK.SOL_SOCKET, SK.SO_RXQ_OVFL): _INT,
    (SK.SOL_SOCKET, SK.SO_INCOMING_CPU): _INT,
    (SK.SOL_SOCKET, SK.SO_BINDTODEVICE): 16,  # IFNAMSIZ
    (SK.SOL_SOCKET, SK.SO_BINDTOIFINDEX): _INT,
    (SK.SOL_TCP, SK.TCP_NODELAY): _INT,
    (SK.SOL_TCP, SK.TCP_MAXSEG): _INT,
    (SK.SOL_TCP, SK.TCP_CORK): _INT,
    (SK.SOL_TCP, SK.TCP_KEEPIDLE): _INT,
    (SK.SOL_TCP, SK.TCP_KEEPINTVL): _INT,
    (SK.SOL_TCP, SK.TCP_KEEPCNT): _INT,
    (SK.SOL_TCP, SK.TCP_SYNCNT): _INT,
    (SK.SOL_TCP, SK.TCP_LINGER2): _INT,
    (SK.SOL_TCP, SK.TCP_DEFER_ACCEPT): _INT,
    (SK.SOL_TCP, SK.TCP_WINDOW_CLAMP): _INT,
    # struct tcp_info grows with the kernel; 512 bytes outgrow it.
    (SK.SOL_TCP, SK.TCP_INFO): 512,
    (SK.SOL_TCP, SK.TCP_QUICKACK): _INT,
    (SK.SOL_TCP, SK.TCP_CONGESTION): 16,  # TCP_CA_NAME_MAX
    (SK.SOL_TCP, SK.TCP_USER_TIMEOUT): _INT,
    (SK.SOL_TCP, SK.TCP_NOTSENT_LOWAT): _INT,
    (SK.SOL_TCP, 23): _INT,  # TCP_FASTOPEN
    (SK.SOL_TCP, 30): _INT,  # TCP_FASTOPEN_CONNECT
    (SK.SOL_TCP, 36): _INT,  # TCP_INQ
    (SK.SOL_UDP, 1): _INT,  # UDP_CORK
    (SK.SOL_IP, SK.IP_TOS): _INT,
    (SK.SOL_IP, SK.IP_TTL): _INT,
    (SK.SOL_IP, SK.IP_PKTINFO): _INT,
    (SK.SOL_IP, SK.IP_RECVERR): _INT,
    (SK.SOL_IP, SK.IP_RECVTOS): _INT,
    (SK.SOL_IP, 12): _INT,  # IP_RECVTTL
    (SK.SOL_IP, SK.IP_MTU_DISCOVER): _INT,
    (SK.SOL_IP, 14): _INT,  # IP_MTU
    (SK.SOL_IP, 15): _INT,  # IP_FREEBIND
    (SK.SOL_IP, 20): _INT,  # IP_RECVORIGDSTADDR
    (SK.SOL_IP, 24): _INT,  # IP_BIND_ADDRESS_NO_PORT
    (SK.SOL_IP, 32): _INT,  # IP_MULTICAST_IF (an in_addr)
    (SK.SOL_IP, SK.IP_MULTICAST_TTL): _INT,
    (SK.SOL_IP, SK.IP_MULTICAST_LOOP): _INT,
    (SK.SOL_IP, 35): 0,  # IP_ADD_MEMBERSHIP
    (SK.SOL_IP, 36): 0,  # IP_DROP_MEMBERSHIP
    (SK.SOL_IPV6, SK.IPV6_UNICAST_HOPS): _INT,
    (SK.SOL_IPV6, 17): _INT,  # IPV6_MULTICAST_IF
    (SK.SOL_IPV6, 18): _INT,  # IPV6_MULTICAST_HOPS
    (SK.SOL_IPV6, SK.IPV6_MULTICAST_LOOP): _INT,
    (SK.SOL_IPV6, 20): 0,  # IPV6_ADD_MEMBERSHIP
    (SK.SOL_IPV6, 21): 0,  # IPV6_DROP_MEMBERSHIP
    (SK.SOL_IPV6, 23): _INT,  # IPV6_MTU_DISCOVER
    (SK.SOL_IPV6, 24): _INT,  # IPV6_MTU
    (SK.SOL_IPV6, 25): _INT,  # IPV6_RECVERR
    (SK.SOL_IPV6, SK.IPV6_V6ONLY): _INT,
    (SK.SOL_IPV6, SK.IPV6_RECVPKTINFO): _INT,
    (SK.SOL_IPV6, 51): _INT,  # IPV6_RECVHOPLIMIT
    (SK.SOL_IPV6, 66): _INT,  # IPV6_RECVTCLASS
    (SK.SOL_IPV6, SK.IPV6_TCLASS): _INT,
}

# Control messages a received message may bring to the application: plain
# values about the message (its arrival time, addresses, header fields,
# queued errors).
RECV_CMSGS = frozenset(
    {
        (SK.SOL_SOCKET, SK.SO_TIMESTAMP_OLD),
        (SK.SOL_SOCKET, 35),  # SO_TIMESTAMPNS_OLD
        (SK.SOL_SOCKET, 40),  # SO_RXQ_OVFL
        (SK.SOL_IP, 1),  # IP_TOS
        (SK.SOL_IP, 2),  # IP_TTL
        (SK.SOL_IP, SK.IP_PKTINFO),
        (SK.SOL_IP, 11),  # IP_RECVERR
        (SK.SOL_IP, 20),  # IP_ORIGDSTADDR
        (SK.SOL_IPV6, 25),  # IPV6_RECVERR
        (SK.SOL_IPV6, SK.IPV6_PKTINFO),
        (SK.SOL_IPV6, 52),  # IPV6_HOPLIMIT
        (SK.SOL_IPV6, SK.IPV6_TCLASS),
        (SK.SOL_TCP, 36),  # TCP_CM_INQ
    }
)

# Control messages a send may pass to the host: per-message values of IP
# and IPv6 header fields and the source address (which the host checks
# as for bind), and UDP segmentation offload's segment size.
SEND_CMSGS = frozenset(
    {
        (SK.SOL_IP, 1),  # IP_TOS
        (SK.SOL_IP, 2),  # IP_TTL
        (SK.SOL_IP, SK.IP_PKTINFO),
        (SK.SOL_IPV6, SK.IPV6_PKTINFO),
        (SK.SOL_IPV6, 52),  # IPV6_HOPLIMIT
        (SK.SOL_IPV6, SK.IPV6_TCLASS),
        (SK.SOL_UDP, 103),  # UDP_SEGMENT
    }
)

# send and recv flags passed to the host; the sentry does the waiting, so
# MSG_DONTWAIT and MSG_WAITALL are its own, and MSG_NOSIGNAL is always
# added (SIGPIPE is the sentry's to raise on the application).
# TODO(#7): MSG_FASTOPEN (a connect inside sendto) fails with EOPNOTSUPP.
SEND_FLAGS = SK.MSG_OOB | SK.MSG_DONTROUTE | SK.MSG_EOR | SK.MSG_CONFIRM | SK.MSG_MORE
RECV_FLAGS = SK.MSG_OOB | SK.MSG_PEEK | SK.MSG_TRUNC | SK.MSG_ERRQUEUE
# msg_flags a host receive reports that the application sees.
RECV_OUT_FLAGS = (
    SK.MSG_OOB | SK.MSG_TRUNC | SK.MSG_CTRUNC | SK.MSG_EOR | SK.MSG_ERRQUEUE
)

# SIOCATMARK: whether the next byte is urgent data.
SIOCATMARK = 0x8905

# ioctls on a socket whose result is one int the host computes.
INT_IOCTLS = frozenset({I.FIONREAD, I.TIOCOUTQ, SIOCATMARK})

# Interface ioctls that read a struct ifreq (SIOCGIFCONF apart): the host's
# interfaces, since the sandbox shares the host's network namespace.
IFREQ_IOCTLS = frozenset(
    {
        SK.SIOCGIFNAME,
        SK.SIOCGIFFLAGS,
        SK.SIOCGIFADDR,
        SK.SIOCGIFNETMASK,
        SK.SIOCGIFMTU,
        SK.SIOCGIFHWADDR,
        SK.SIOCGIFINDEX,
        SK.SIOCGIFMETRIC,
        SK.SIOCGIFMAP,
        SK.SIOCGIFTXQLEN,
    }
)

# Every ioctl the sentry makes on a host socket.
HOST_IOCTLS = INT_IOCTLS | IFREQ_IOCTLS | {SK.SIOCGIFCONF}
