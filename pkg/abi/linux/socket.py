"""Socket constants and structure layouts (include/linux/socket.h,
include/uapi/linux/{un,in,in6,tcp,netlink,rtnetlink,if,if_addr}.h)."""

import struct

# Address families.
AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
AF_PACKET = 17
AF_MAX = 46

# Socket types, and the flags socket(2) takes in the type argument.
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_RDM = 4
SOCK_SEQPACKET = 5
SOCK_PACKET = 10
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000

# shutdown(2).
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2

# send/recv flags.
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTROUTE = 0x4
MSG_CTRUNC = 0x8
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_EOR = 0x80
MSG_WAITALL = 0x100
MSG_CONFIRM = 0x800
MSG_ERRQUEUE = 0x2000
MSG_NOSIGNAL = 0x4000
MSG_MORE = 0x8000
MSG_WAITFORONE = 0x10000
MSG_BATCH = 0x40000
MSG_ZEROCOPY = 0x4000000
MSG_FASTOPEN = 0x20000000
MSG_CMSG_CLOEXEC = 0x40000000

# Levels.
SOL_IP = 0
SOL_SOCKET = 1
SOL_TCP = 6
SOL_UDP = 17
SOL_IPV6 = 41
SOL_RAW = 255
SOL_NETLINK = 270

# Protocols.
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58
IPPROTO_RAW = 255

# SOL_SOCKET options (asm-generic/socket.h).
SO_DEBUG = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_NO_CHECK = 11
SO_PRIORITY = 12
SO_LINGER = 13
SO_BSDCOMPAT = 14
SO_REUSEPORT = 15
SO_PASSCRED = 16
SO_PEERCRED = 17
SO_RCVLOWAT = 18
SO_SNDLOWAT = 19
SO_RCVTIMEO_OLD = 20
SO_SNDTIMEO_OLD = 21
SO_BINDTODEVICE = 25
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SO_PEERNAME = 28
SO_TIMESTAMP_OLD = 29
SO_ACCEPTCONN = 30
SO_PEERSEC = 31
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_PASSSEC = 34
SO_MARK = 36
SO_PROTOCOL = 38
SO_DOMAIN = 39
SO_RXQ_OVFL = 40
SO_PEEK_OFF = 42
SO_BUSY_POLL = 46
SO_INCOMING_CPU = 49
SO_COOKIE = 57
SO_PEERGROUPS = 59
SO_BINDTOIFINDEX = 62
SO_RCVTIMEO_NEW = 66
SO_SNDTIMEO_NEW = 67

# Control message types.
SCM_RIGHTS = 1
SCM_CREDENTIALS = 2

# The room for descriptors in one SCM_RIGHTS message (SCM_MAX_FD).
SCM_MAX_FD = 253

# IPPROTO_TCP options.
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_CORK = 3
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_SYNCNT = 7
TCP_LINGER2 = 8
TCP_DEFER_ACCEPT = 9
TCP_WINDOW_CLAMP = 10
TCP_INFO = 11
TCP_QUICKACK = 12
TCP_CONGESTION = 13
TCP_USER_TIMEOUT = 18
TCP_NOTSENT_LOWAT = 25

# IPPROTO_IP options.
IP_TOS = 1
IP_TTL = 2
IP_HDRINCL = 3
IP_OPTIONS = 4
IP_PKTINFO = 8
IP_RECVERR = 11
IP_RECVTOS = 13
IP_MTU_DISCOVER = 10
IP_MULTICAST_TTL = 33
IP_MULTICAST_LOOP = 34

# IPPROTO_IPV6 options.
IPV6_UNICAST_HOPS = 16
IPV6_MULTICAST_LOOP = 19
IPV6_V6ONLY = 26
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_TCLASS = 67

# Default and bounds of the buffer sizes (net.core.{w,r}mem_default and
# _max); setsockopt doubles what it is given, as sock_setsockopt does.
SOCK_MIN_SNDBUF = 4608
SOCK_MIN_RCVBUF = 2304
DEFAULT_BUF = 212992
MAX_BUF = 212992

# Backlog bound (net.core.somaxconn).
SOMAXCONN = 4096

# sockaddr_un's room for a path (UNIX_PATH_MAX).
UNIX_PATH_MAX = 108

# struct ucred { pid_t pid; uid_t uid; gid_t gid; }.
UCRED = struct.Struct("<iII")
# struct linger { int l_onoff; int l_linger; }.
LINGER = struct.Struct("<ii")
# struct timeval { long tv_sec; long tv_usec; }.
TIMEVAL = struct.Struct("<qq")
# struct msghdr: name, namelen (+pad), iov, iovlen, control, controllen,
# flags (+pad).
MSGHDR = struct.Struct("<QI4xQQQQi4x")
# struct mmsghdr: a msghdr and msg_len (+pad).
MMSGHDR_SIZE = MSGHDR.size + 8
# struct cmsghdr: len (size_t), level, type.
CMSGHDR = struct.Struct("<Qii")
CMSG_ALIGN = 8

# struct sockaddr_in: family, port (big endian), address, zero padding.
SOCKADDR_IN = struct.Struct("<H2s4s8x")
# struct sockaddr_in6: family, port, flowinfo, address, scope id.
SOCKADDR_IN6 = struct.Struct("<H2sI16sI")
# struct sockaddr_nl: family, pad, pid, groups.
SOCKADDR_NL = struct.Struct("<HHII")

# Netlink (uapi/linux/netlink.h).
NETLINK_ROUTE = 0
NETLINK_KOBJECT_UEVENT = 15
NLMSGHDR = struct.Struct("<IHHII")
NLMSG_ALIGNTO = 4
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_MIN_TYPE = 0x10

# rtnetlink message types (uapi/linux/rtnetlink.h).
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTM_GETNEIGH = 30
RTM_GETRULE = 34

# struct ifinfomsg: family, pad, type, index, flags, change.
IFINFOMSG = struct.Struct("<BxHiII")
# struct ifaddrmsg: family, prefixlen, flags, scope, index.
IFADDRMSG = struct.Struct("<BBBBi")
# struct rtattr: len, type.
RTATTR = struct.Struct("<HH")

IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_QDISC = 6
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKMODE = 17
IFLA_GROUP = 27

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_CACHEINFO = 6
IFA_FLAGS = 8

IFA_F_PERMANENT = 0x80
RT_SCOPE_HOST = 254
ARPHRD_LOOPBACK = 772
IF_OPER_UNKNOWN = 0

# Interface flags (uapi/linux/if.h).
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000

# Interface ioctls (uapi/linux/sockios.h).
SIOCGIFNAME = 0x8910
SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
SIOCSIFNETMASK = 0x891C
SIOCSIFMTU = 0x8922
SIOCSIFNAME = 0x8923
SIOCSIFHWADDR = 0x8924
SIOCSIFTXQLEN = 0x8943
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
SIOCGIFMETRIC = 0x891D
SIOCGIFMAP = 0x8970
SIOCGIFTXQLEN = 0x8942
SIOCOUTQ = 0x5411
SIOCINQ = 0x541B
SIOCGSTAMP = 0x8906

# struct ifreq is 40 bytes: a 16-byte name and a 24-byte union.
IFNAMSIZ = 16
IFREQ_SIZE = 40
# struct ifconf: len (int, +pad), buf pointer.
IFCONF = struct.Struct("<i4xQ")
