"""socket(2) and the calls on sockets: bind, listen, accept, connect, the
send and receive family, shutdown, names and options (net/socket.c).

Handlers decode user memory (sockaddrs, msghdrs, control messages) and
call the socket's operations with plain values (pkg/sentry/socket).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN
from pkg.sentry.socket import hostinet_allow
from pkg.sentry.socket.hostinet import HostSocket
from pkg.sentry.socket.inet import new_inet_socket
from pkg.sentry.socket.netlink import new_netlink_socket
from pkg.sentry.socket.socket import ControlMessages, RecvResult, SocketFD
from pkg.sentry.socket.unix import UnixSocket
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.linux.sys_read_write import (
    gather,
    read_iovecs,
    scatter,
)
from pkg.sentry.syscalls.linux.sys_time import read_timespec
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

# sizeof(struct sockaddr_storage): the longest address a call takes.
_SOCKADDR_MAX = 128
# The most bytes setsockopt copies in; no option this sentry knows is
# longer, and longer values are refused by the option itself.
_OPTVAL_MAX = 4096
_SOCK_MAX = 11
_UIO_MAXIOV = 1024
_MAX_RW_COUNT = 0x7FFFF000


def _socket_file(t: Task, fd: int) -> SocketFD:
    """Returns fd's socket (sockfd_lookup).

    Raises:
        SyscallError: EBADF for a closed fd, ENOTSOCK for another file.
    """
    f = t.fd_table.get(fd)
    if not isinstance(f, SocketFD):
        raise SyscallError(errno.ENOTSOCK)
    return f


def _new_socket(
    t: Task, family: int, stype: int, protocol: int, flags: int
) -> SocketFD:
    """Makes a socket of family (sock_create)."""
    if family == SK.AF_UNIX:
        if protocol not in (0, SK.AF_UNIX):
            raise SyscallError(errno.EPROTONOSUPPORT)
        if stype == SK.SOCK_RAW:
            # unix_create treats SOCK_RAW as SOCK_DGRAM.
            stype = SK.SOCK_DGRAM
        if stype not in (SK.SOCK_STREAM, SK.SOCK_DGRAM, SK.SOCK_SEQPACKET):
            raise SyscallError(errno.ESOCKTNOSUPPORT)
        return UnixSocket(t, stype, flags)
    if family in (SK.AF_INET, SK.AF_INET6):
        return new_inet_socket(t, family, stype, protocol, flags)
    if family == SK.AF_NETLINK:
        return new_netlink_socket(t, stype, protocol, flags)
    # AF_PACKET, AF_BLUETOOTH, AF_VSOCK...: families this sandbox does not
    # build, as a kernel without their modules (EAFNOSUPPORT).
    raise SyscallError(errno.EAFNOSUPPORT)


def _split_type(raw: int) -> tuple[int, int]:
    """Splits socket(2)'s type into (type, SOCK_NONBLOCK|SOCK_CLOEXEC)."""
    flags = raw & ~SK.SOCK_TYPE_MASK
    if flags & ~(SK.SOCK_CLOEXEC | SK.SOCK_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    stype = raw & SK.SOCK_TYPE_MASK
    if stype == 0 or stype >= _SOCK_MAX:
        raise SyscallError(errno.EINVAL)
    return stype, flags


def _install(t: Task, f: FileDescription, flags: int) -> int:
    try:
        return t.fd_table.new_fd(f, bool(flags & SK.SOCK_CLOEXEC), limit=fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def sys_socket(t: Task, args: Args) -> int:
    """socket(2)."""
    family, raw, protocol = s32(args[0]), s32(args[1]), s32(args[2])
    if family < 0 or family >= SK.AF_MAX:
        raise SyscallError(errno.EAFNOSUPPORT)
    stype, flags = _split_type(raw)
    return _install(t, _new_socket(t, family, stype, protocol, flags), flags)


def sys_socketpair(t: Task, args: Args) -> int:
    """socketpair(2): AF_UNIX only, as in Linux (other families have no
    pairs: EOPNOTSUPP)."""
    family, raw, protocol, addr = s32(args[0]), s32(args[1]), s32(args[2]), args[3]
    if family < 0 or family >= SK.AF_MAX:
        raise SyscallError(errno.EAFNOSUPPORT)
    stype, flags = _split_type(raw)
    a = _new_socket(t, family, stype, protocol, flags)
    if not isinstance(a, UnixSocket):
        a.dec_ref()
        raise SyscallError(errno.EOPNOTSUPP)
    b = UnixSocket(t, a.stype, flags)
    a.connect_pair(b)
    try:
        fds = t.fd_table.new_fds([a, b], bool(flags & SK.SOCK_CLOEXEC), fd_limit(t))
    except SyscallError:
        a.dec_ref()
        b.dec_ref()
        raise
    try:
        t.copy_out(addr, fds[0].to_bytes(4, "little") + fds[1].to_bytes(4, "little"))
    except SyscallError:
        for fd in fds:
            t.fd_table.close(fd)
        raise
    return 0


# Addresses.


def _copy_in_addr(t: Task, addr: int, length: int) -> bytes:
    """Reads a sockaddr argument (move_addr_to_kernel)."""
    if length < 0 or length > _SOCKADDR_MAX:
        raise SyscallError(errno.EINVAL)
    if length == 0:
        return b""
    return t.copy_in(addr, length)


def _copy_out_addr(t: Task, addr: int, len_addr: int, value: bytes) -> None:
    """Writes an address and its full length (move_addr_to_user): the
    address is cut to the user's buffer, the length is not."""
    if addr == 0:
        return
    room = t.mm.read_i32(len_addr)
    if room < 0:
        raise SyscallError(errno.EINVAL)
    if room and value:
        t.copy_out(addr, value[:room])
    t.mm.write_i32(len_addr, len(value))


def sys_bind(t: Task, args: Args) -> int:
    """bind(2)."""
    s = _socket_file(t, s32(args[0]))
    s.bind(t, _copy_in_addr(t, args[1], s32(args[2])))
    return 0


def sys_listen(t: Task, args: Args) -> int:
    """listen(2); the backlog is capped at net.core.somaxconn, and a
    negative one is taken as unsigned, as Linux does."""
    s = _socket_file(t, s32(args[0]))
    s.listen(t, min(u32(args[1]), SK.SOMAXCONN))
    return 0


def _accept(t: Task, fd: int, addr: int, len_addr: int, flags: int) -> int:
    if flags & ~(SK.SOCK_CLOEXEC | SK.SOCK_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    s = _socket_file(t, fd)
    new, peer = s.accept(t, flags)
    try:
        _copy_out_addr(t, addr, len_addr, peer)
    except SyscallError:
        new.dec_ref()
        raise
    return _install(t, new, flags)


def sys_accept(t: Task, args: Args) -> int:
    """accept(2)."""
    return _accept(t, s32(args[0]), args[1], args[2], 0)


def sys_accept4(t: Task, args: Args) -> int:
    """accept4(2)."""
    return _accept(t, s32(args[0]), args[1], args[2], s32(args[3]))


def sys_connect(t: Task, args: Args) -> int:
    """connect(2)."""
    s = _socket_file(t, s32(args[0]))
    s.connect(t, _copy_in_addr(t, args[1], s32(args[2])))
    return 0


def sys_getsockname(t: Task, args: Args) -> int:
    """getsockname(2)."""
    s = _socket_file(t, s32(args[0]))
    _copy_out_addr(t, args[1], args[2], s.getsockname(t))
    return 0


def sys_getpeername(t: Task, args: Args) -> int:
    """getpeername(2)."""
    s = _socket_file(t, s32(args[0]))
    _copy_out_addr(t, args[1], args[2], s.getpeername(t))
    return 0


def sys_shutdown(t: Task, args: Args) -> int:
    """shutdown(2)."""
    s = _socket_file(t, s32(args[0]))
    how = s32(args[1])
    if how not in (SK.SHUT_RD, SK.SHUT_WR, SK.SHUT_RDWR):
        raise SyscallError(errno.EINVAL)
    s.shutdown(t, how)
    return 0


# Options.


def sys_getsockopt(t: Task, args: Args) -> int:
    """getsockopt(2): the value is cut to the caller's optlen, which is
    set to the bytes written."""
    s = _socket_file(t, s32(args[0]))
    level, name, addr, len_addr = s32(args[1]), s32(args[2]), args[3], args[4]
    room = t.mm.read_i32(len_addr)
    if room < 0:
        raise SyscallError(errno.EINVAL)
    value = s.getsockopt(t, level, name)[:room]
    if value:
        t.copy_out(addr, value)
    t.mm.write_i32(len_addr, len(value))
    return 0


def sys_setsockopt(t: Task, args: Args) -> int:
    """setsockopt(2)."""
    s = _socket_file(t, s32(args[0]))
    level, name, addr, length = s32(args[1]), s32(args[2]), args[3], s32(args[4])
    if length < 0:
        raise SyscallError(errno.EINVAL)
    value = t.copy_in(addr, min(length, _OPTVAL_MAX)) if length else b""
    s.setsockopt(t, level, name, value)
    return 0


# Sending.


def _check_credentials(t: Task, creds: tuple[int, int, int]) -> None:
    """Refuses SCM_CREDENTIALS a sender may not claim (scm_check_creds)."""
    pid, uid, gid = creds
    c = t.creds
    if pid != t.pid and not c.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if uid not in (c.ruid, c.euid, c.suid) and not c.has_capability(CAP_SETUID):
        raise SyscallError(errno.EPERM)
    if gid not in (c.rgid, c.egid, c.sgid) and not c.has_capability(CAP_SETGID):
        raise SyscallError(errno.EPERM)


def _parse_control(t: Task, s: SocketFD, addr: int, length: int) -> ControlMessages:
    """Decodes sendmsg's control messages (__scm_send). Only unix sockets
    take SCM_RIGHTS and SCM_CREDENTIALS; other families' control messages
    (IP_TOS, IP_PKTINFO...) are ignored.

    TODO(#5): inet control messages are ignored rather than applied on
    the sentry's own inet sockets; hostinet's sockets pass theirs to the
    host (_parse_host_control).
    """
    out = ControlMessages()
    if length < SK.CMSGHDR.size:
        return out
    if isinstance(s, HostSocket):
        return _parse_host_control(t, addr, length)
    if not isinstance(s, UnixSocket):
        return out
    if length > 0x7FFFFFFF:
        raise SyscallError(errno.ENOBUFS)
    raw = t.copy_in(addr, length)
    pos = 0
    try:
        while pos + SK.CMSGHDR.size <= length:
            cmsg_len, level, ctype = SK.CMSGHDR.unpack_from(raw, pos)
            if cmsg_len < SK.CMSGHDR.size or cmsg_len > length - pos:
                raise SyscallError(errno.EINVAL)
            body = raw[pos + SK.CMSGHDR.size : pos + cmsg_len]
            if level == SK.SOL_SOCKET:
                if ctype == SK.SCM_RIGHTS:
                    _add_rights(t, out, body)
                elif ctype == SK.SCM_CREDENTIALS:
                    if len(body) != SK.UCRED.size:
                        raise SyscallError(errno.EINVAL)
                    creds = SK.UCRED.unpack(body)
                    _check_credentials(t, creds)
                    out.creds = creds
                else:
                    raise SyscallError(errno.EINVAL)
            pos += (cmsg_len + SK.CMSG_ALIGN - 1) & ~(SK.CMSG_ALIGN - 1)
    except SyscallError:
        out.release()
        raise
    return out


def _parse_host_control(t: Task, addr: int, length: int) -> ControlMessages:
    """Decodes the control messages of a send on a hostinet socket: those
    hostinet passes to the host (hostinet_allow.SEND_CMSGS) are kept; any
    other of levels SOL_SOCKET, SOL_IP and SOL_IPV6 is EINVAL, as
    __sock_cmsg_send and ip_cmsg_send refuse unknown types, and those of
    other levels are ignored, as Linux's inet sendmsg ignores them."""
    if length > 0x7FFFFFFF:
        raise SyscallError(errno.ENOBUFS)
    raw = t.copy_in(addr, length)
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos + SK.CMSGHDR.size <= length:
        cmsg_len, level, ctype = SK.CMSGHDR.unpack_from(raw, pos)
        if cmsg_len < SK.CMSGHDR.size or cmsg_len > length - pos:
            raise SyscallError(errno.EINVAL)
        body = raw[pos + SK.CMSGHDR.size : pos + cmsg_len]
        if (level, ctype) in hostinet_allow.SEND_CMSGS:
            out.append((level, ctype, body))
        elif level in (SK.SOL_SOCKET, SK.SOL_IP, SK.SOL_IPV6):
            raise SyscallError(errno.EINVAL)
        pos += (cmsg_len + SK.CMSG_ALIGN - 1) & ~(SK.CMSG_ALIGN - 1)
    return ControlMessages(host=out or None)


def _add_rights(t: Task, out: ControlMessages, body: bytes) -> None:
    n = len(body) // 4
    if n == 0:
        return
    have = len(out.rights or ())
    if have + n > SK.SCM_MAX_FD:
        raise SyscallError(errno.EINVAL)
    if out.rights is None:
        out.rights = []
    for i in range(n):
        fd = int.from_bytes(body[4 * i : 4 * i + 4], "little", signed=True)
        f = t.fd_table.get(fd)
        f.inc_ref()
        out.rights.append(f)


def _send(
    t: Task,
    s: SocketFD,
    data: bytes,
    to: bytes | None,
    control: ControlMessages,
    flags: int,
) -> int:
    return s.sendmsg(t, data, to, control, flags)


def sys_sendto(t: Task, args: Args) -> int:
    """sendto(2) (and send(3))."""
    s = _socket_file(t, s32(args[0]))
    buf, length, flags = args[1], min(args[2], _MAX_RW_COUNT), u32(args[3])
    to = None
    if args[4]:
        to = _copy_in_addr(t, args[4], s32(args[5])) or None
    data = t.copy_in(buf, length) if length else b""
    return _send(t, s, data, to, ControlMessages(), flags)


def _sendmsg(t: Task, s: SocketFD, msg_addr: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen, _ = SK.MSGHDR.unpack(
        t.copy_in(msg_addr, SK.MSGHDR.size)
    )
    to = None
    if name and namelen:
        # copy_msghdr_from_user cuts a long name to a sockaddr_storage.
        length = s32(namelen)
        if length < 0:
            raise SyscallError(errno.EINVAL)
        to = _copy_in_addr(t, name, min(length, _SOCKADDR_MAX))
    iovs = _msg_iovecs(t, iov, iovlen)
    data = gather(t, iovs) if sum(n for _, n in iovs) else b""
    ctl = _parse_control(t, s, control, controllen)
    return _send(t, s, data, to, ctl, flags)


def _msg_iovecs(t: Task, addr: int, count: int) -> list[tuple[int, int]]:
    """Reads a msghdr's iovecs; too many is EMSGSIZE here, not EINVAL."""
    if count > _UIO_MAXIOV:
        raise SyscallError(errno.EMSGSIZE)
    return read_iovecs(t, addr, count)


def sys_sendmsg(t: Task, args: Args) -> int:
    """sendmsg(2)."""
    s = _socket_file(t, s32(args[0]))
    return _sendmsg(t, s, args[1], u32(args[2]))


def sys_sendmmsg(t: Task, args: Args) -> int:
    """sendmmsg(2): stops at the first error, which is reported only if no
    message was sent."""
    s = _socket_file(t, s32(args[0]))
    addr, vlen, flags = args[1], min(u32(args[2]), _UIO_MAXIOV), u32(args[3])
    sent = 0
    for i in range(vlen):
        entry = addr + i * SK.MMSGHDR_SIZE
        try:
            n = _sendmsg(t, s, entry, flags)
            t.mm.write_u32(entry + SK.MSGHDR.size, n)
        except SyscallError:
            if sent:
                break
            raise
        sent += 1
    return sent


# Receiving.


def _recv(t: Task, s: SocketFD, length: int, flags: int) -> RecvResult:
    return s.recvmsg(t, min(length, _MAX_RW_COUNT), flags)


def sys_recvfrom(t: Task, args: Args) -> int:
    """recvfrom(2) (and recv(3))."""
    s = _socket_file(t, s32(args[0]))
    buf, length, flags = args[1], args[2], u32(args[3])
    r = _recv(t, s, length, flags)
    if r.control is not None:
        r.control.release()
    if r.data:
        n = t.mm.copy_out_partial(buf, r.data)
        if n < len(r.data):
            raise SyscallError(errno.EFAULT)
    if args[4] and r.addr is not None:
        _copy_out_addr(t, args[4], args[5], r.addr)
    elif args[4]:
        t.mm.write_i32(args[5], 0)
    return r.length


class _ControlWriter:
    """_ControlWriter lays out received control messages in the user's
    buffer as put_cmsg does, setting MSG_CTRUNC when they do not fit."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.out = bytearray()
        self.flags = 0

    def put(self, level: int, ctype: int, data: bytes) -> None:
        left = self.room - len(self.out)
        if left < SK.CMSGHDR.size:
            self.flags |= SK.MSG_CTRUNC
            return
        cmsg_len = SK.CMSGHDR.size + len(data)
        if left < cmsg_len:
            self.flags |= SK.MSG_CTRUNC
            cmsg_len = left
        chunk = SK.CMSGHDR.pack(cmsg_len, level, ctype) + data
        space = (SK.CMSGHDR.size + len(data) + SK.CMSG_ALIGN - 1) & ~(SK.CMSG_ALIGN - 1)
        self.out += chunk[:cmsg_len].ljust(min(space, left), b"\0")

    def put_rights(self, t: Task, files: list[FileDescription], cloexec: bool) -> None:
        left = self.room - len(self.out)
        fit = max((left - SK.CMSGHDR.size) // 4, 0) if left > SK.CMSGHDR.size else 0
        fds: list[int] = []
        for f in files[:fit]:
            try:
                fds.append(t.fd_table.new_fd(f, cloexec, limit=fd_limit(t)))
            except SyscallError:
                f.dec_ref()
                self.flags |= SK.MSG_CTRUNC
                continue
        for f in files[fit:]:
            f.dec_ref()
        if len(files) > fit:
            self.flags |= SK.MSG_CTRUNC
        if not fds:
            return
        body = b"".join(fd.to_bytes(4, "little", signed=True) for fd in fds)
        self.put(SK.SOL_SOCKET, SK.SCM_RIGHTS, body)


def _recvmsg(t: Task, s: SocketFD, msg_addr: int, flags: int) -> int:
    raw = t.copy_in(msg_addr, SK.MSGHDR.size)
    name, namelen, iov, iovlen, control, controllen, _ = SK.MSGHDR.unpack(raw)
    iovs = _msg_iovecs(t, iov, iovlen)
    total = sum(n for _, n in iovs)
    r = _recv(t, s, total, flags)

    cw = _ControlWriter(controllen if control else 0)
    ctl = r.control
    if isinstance(s, UnixSocket) and s.passcred:
        creds = ctl.creds if ctl is not None and ctl.creds else (0, 65534, 65534)
        cw.put(SK.SOL_SOCKET, SK.SCM_CREDENTIALS, SK.UCRED.pack(*creds))
    for level, ctype, body in r.cmsgs or ():
        cw.put(level, ctype, body)
    if ctl is not None and ctl.rights:
        rights, ctl.rights = ctl.rights, None
        cw.put_rights(t, rights, bool(flags & SK.MSG_CMSG_CLOEXEC))

    if r.data:
        scatter(t, iovs, r.data)
    out_namelen = 0
    if name and r.addr is not None:
        out_namelen = len(r.addr)
        room = max(s32(namelen), 0)
        if room:
            t.copy_out(name, r.addr[:room])
    if cw.out:
        t.copy_out(control, bytes(cw.out))
    # msg_namelen, msg_controllen and msg_flags go back to the user.
    t.mm.write_u32(msg_addr + 8, out_namelen)
    t.mm.write_u64(msg_addr + 40, len(cw.out))
    # As Linux, MSG_CMSG_CLOEXEC is reported back in msg_flags.
    out_flags = r.flags | cw.flags | (flags & SK.MSG_CMSG_CLOEXEC)
    t.mm.write_i32(msg_addr + 48, out_flags)
    return r.length


def sys_recvmsg(t: Task, args: Args) -> int:
    """recvmsg(2)."""
    s = _socket_file(t, s32(args[0]))
    return _recvmsg(t, s, args[1], u32(args[2]))


def sys_recvmmsg(t: Task, args: Args) -> int:
    """recvmmsg(2): after the first message, MSG_WAITFORONE stops waiting;
    the timeout is checked between messages, as Linux does."""
    s = _socket_file(t, s32(args[0]))
    addr, vlen, flags = args[1], min(u32(args[2]), _UIO_MAXIOV), u32(args[3])
    deadline = None
    if args[4]:
        ns = read_timespec(t, args[4])
        deadline = time.monotonic() + ns / 1e9
    got = 0
    for i in range(vlen):
        entry = addr + i * SK.MMSGHDR_SIZE
        try:
            n = _recvmsg(t, s, entry, flags)
            t.mm.write_u32(entry + SK.MSGHDR.size, n)
        except SyscallError:
            if got:
                break
            raise
        got += 1
        if flags & SK.MSG_WAITFORONE:
            flags |= SK.MSG_DONTWAIT
        if deadline is not None and time.monotonic() >= deadline:
            break
    return got


ENTRIES = [
    partial(
        N.SYS_socket,
        "socket",
        sys_socket,
        "AF_UNIX, AF_INET/AF_INET6 (loopback only, or host TCP and UDP "
        "sockets with --network=host), AF_NETLINK NETLINK_ROUTE; other "
        "families fail with EAFNOSUPPORT",
    ),
    full(N.SYS_socketpair, "socketpair", sys_socketpair),
    full(N.SYS_bind, "bind", sys_bind),
    full(N.SYS_listen, "listen", sys_listen),
    full(N.SYS_accept, "accept", sys_accept),
    full(N.SYS_accept4, "accept4", sys_accept4),
    full(N.SYS_connect, "connect", sys_connect),
    full(N.SYS_getsockname, "getsockname", sys_getsockname),
    full(N.SYS_getpeername, "getpeername", sys_getpeername),
    full(N.SYS_shutdown, "shutdown", sys_shutdown),
    full(N.SYS_getsockopt, "getsockopt", sys_getsockopt),
    full(N.SYS_setsockopt, "setsockopt", sys_setsockopt),
    full(N.SYS_sendto, "sendto", sys_sendto),
    partial(
        N.SYS_sendmsg,
        "sendmsg",
        sys_sendmsg,
        "control messages other than SCM_RIGHTS/SCM_CREDENTIALS on unix "
        "sockets are ignored",
    ),
    full(N.SYS_sendmmsg, "sendmmsg", sys_sendmmsg),
    full(N.SYS_recvfrom, "recvfrom", sys_recvfrom),
    full(N.SYS_recvmsg, "recvmsg", sys_recvmsg),
    partial(
        N.SYS_recvmmsg,
        "recvmmsg",
        sys_recvmmsg,
        "the timeout is checked only between messages",
    ),
]
