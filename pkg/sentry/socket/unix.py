"""Unix domain sockets (net/unix/af_unix.c).

Addresses are raw struct sockaddr_un bytes. A socket is bound to one of:

- a path: bind makes a socket inode in the VFS (mknod with S_IFSOCK) whose
  endpoint is a BoundEndpoint pointing back at the socket; connect finds
  it with VirtualFilesystem.bound_endpoint_at, which checks write
  permission. The inode outlives the socket (unlink removes it), and a
  connect to a closed socket's path is refused;
- an abstract name (sun_path starting with a NUL byte): a name in the
  sandbox's abstract namespace, gone when the socket closes;
- an autobind name: an abstract name of five hex digits, given by bind with
  only the family, or by connect/send with SO_PASSCRED on an unbound
  socket.

SCM_RIGHTS and SCM_CREDENTIALS travel with messages (transport.Message);
every message carries its sender's credentials, reported to receivers with
SO_PASSCRED. Sockets that only in-flight messages keep open are collected
(collect_garbage), as unix_gc does.

Unlike Linux:
- stream sockets have no out-of-band byte (CONFIG_AF_UNIX_OOB); MSG_OOB
  fails with EOPNOTSUPP (TODO(#5));
- the abstract namespace belongs to the sandbox: there are no network
  namespaces to own it (CLONE_NEWNET fails, TODO(#4)).
"""

from __future__ import annotations

import struct
import weakref
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import socket as SK
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.socket.socket import RCV_SHUTDOWN, ControlMessages, RecvResult, mu
from pkg.sentry.socket.transport import (
    CONNECTED,
    LISTENING,
    Message,
    QueueSocket,
)
from pkg.sentry.vfs.options import MknodOptions
from pkg.sentry.vfs.task_path import path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

_FAMILY = struct.Struct("<H")
_SUN_PATH_OFFSET = 2
_SOCKADDR_UN_SIZE = _SUN_PATH_OFFSET + SK.UNIX_PATH_MAX

_UNNAMED = _FAMILY.pack(SK.AF_UNIX)


class _Namespace:
    """_Namespace is a sandbox's abstract socket names (one network
    namespace's unix_socket_table)."""

    __slots__ = ("collecting", "names", "next_autobind", "rights_sent", "sockets")

    def __init__(self) -> None:
        self.names: dict[bytes, UnixSocket] = {}
        self.next_autobind = 0
        # Every live unix socket, for /proc/net/unix and the collector.
        self.sockets: weakref.WeakSet[UnixSocket] = weakref.WeakSet()
        # A unix socket has travelled in SCM_RIGHTS: closes may leave
        # cycles for collect_garbage.
        self.rights_sent = False
        self.collecting = False


_namespaces: weakref.WeakKeyDictionary[Kernel, _Namespace] = weakref.WeakKeyDictionary()


def _namespace(k: Kernel) -> _Namespace:
    with mu:
        ns = _namespaces.get(k)
        if ns is None:
            ns = _namespaces[k] = _Namespace()
        return ns


def unix_sockets_of(k: Kernel) -> list[UnixSocket]:
    """Returns the unix sockets of k, oldest first (for /proc/net/unix).
    The caller holds mu."""
    return sorted(_namespace(k).sockets, key=lambda s: s.vd.dentry.attrs.ino)  # type: ignore[union-attr]


def _passed_sockets(s: UnixSocket) -> list[UnixSocket]:
    """Returns the unix sockets in SCM_RIGHTS queued on s (and on the
    connections waiting in its accept queue)."""
    out = []
    for q in (s, *s.pending):
        for m in q.rq:
            if m.control is not None and m.control.rights:
                out += [f for f in m.control.rights if isinstance(f, UnixSocket)]
    return out


def collect_garbage(k: Kernel) -> None:
    """Frees unix sockets that only messages in flight keep open, in
    cycles no descriptor can reach (unix_gc).

    A socket is a candidate when every reference to it comes from a queued
    SCM_RIGHTS message. A candidate referenced from a queue of something
    that is not a candidate is reachable, and so is everything in its own
    queue; the other candidates are garbage, and dropping the rights queued
    on them breaks their cycles.
    """
    ns = _namespace(k)
    dropped: list[list] = []
    with mu:
        if ns.collecting:
            return
        ns.collecting = True
        try:
            live = [s for s in ns.sockets if not s.closed]
            passed = {s: _passed_sockets(s) for s in live}
            inflight: dict[UnixSocket, int] = {}
            for kids in passed.values():
                for f in kids:
                    inflight[f] = inflight.get(f, 0) + 1
            cands = {s for s, n in inflight.items() if s.refs() == n}
            if not cands:
                return
            outside = dict(inflight)
            for c in cands:
                for f in passed.get(c, ()):
                    outside[f] -= 1
            reachable = {c for c in cands if outside[c] > 0}
            stack = list(reachable)
            while stack:
                for f in passed.get(stack.pop(), ()):
                    if f in cands and f not in reachable:
                        reachable.add(f)
                        stack.append(f)
            for g in cands - reachable:
                for q in (g, *g.pending):
                    for m in q.rq:
                        if m.control is not None and m.control.rights:
                            dropped.append(m.control.rights)
                            m.control.rights = None
        finally:
            ns.collecting = False
    for rights in dropped:
        for f in rights:
            f.dec_ref()


class BoundEndpoint:
    """BoundEndpoint is what a socket inode holds: a weak reference to the
    socket bound there, so the inode does not keep a closed socket
    alive."""

    __slots__ = ("_ref",)

    def __init__(self, s: UnixSocket) -> None:
        self._ref = weakref.ref(s)

    def socket(self) -> UnixSocket | None:
        """Returns the bound socket, or None once it is gone."""
        return self._ref()


def _parse(addr: bytes) -> tuple[bool, bytes]:
    """Decodes a sockaddr_un for connect/sendto (unix_validate_addr).

    Returns:
        (abstract, name): the abstract name with its leading NUL, or the
        path up to its first NUL.

    Raises:
        SyscallError: EINVAL for a bad length or family.
    """
    if len(addr) <= _SUN_PATH_OFFSET or len(addr) > _SOCKADDR_UN_SIZE:
        raise SyscallError(errno.EINVAL)
    if _FAMILY.unpack_from(addr)[0] != SK.AF_UNIX:
        raise SyscallError(errno.EINVAL)
    path = addr[_SUN_PATH_OFFSET:]
    if path[0] == 0:
        return True, path
    return False, path.split(b"\0", 1)[0]


class UnixSocket(QueueSocket):
    """UnixSocket is an AF_UNIX socket of any type.

    Attributes:
        addr: the bound sockaddr_un bytes, or None.
        abstract: the abstract name this socket owns in the namespace.
    """

    __slots__ = ("abstract", "addr", "kernel")

    def __init__(self, t: Task, stype: int, flags: int) -> None:
        super().__init__(t, SK.AF_UNIX, stype, 0, flags)
        self.addr: bytes | None = None
        self.abstract: bytes | None = None
        self.kernel = t.kernel
        # Under mu: the collector and /proc/net/unix iterate the set.
        with mu:
            _namespace(t.kernel).sockets.add(self)

    # Addresses.

    def bind(self, t: Task, addr: bytes) -> None:
        if len(addr) < _SUN_PATH_OFFSET:
            raise SyscallError(errno.EINVAL)
        if len(addr) == _SUN_PATH_OFFSET:
            if _FAMILY.unpack_from(addr)[0] != SK.AF_UNIX:
                raise SyscallError(errno.EINVAL)
            with mu:
                if self.addr is not None:
                    raise SyscallError(errno.EINVAL)
                self._autobind_locked()
            return
        abstract, name = _parse(addr)
        if abstract:
            with mu:
                if self.addr is not None:
                    raise SyscallError(errno.EINVAL)
                ns = _namespace(self.kernel)
                if name in ns.names:
                    raise SyscallError(errno.EADDRINUSE)
                ns.names[name] = self
                self.abstract = name
                self.addr = _UNNAMED + name
            return
        with mu:
            if self.addr is not None:
                raise SyscallError(errno.EINVAL)
        mode = S.S_IFSOCK | (0o777 & ~t.fs.umask)
        pop = path_operation(t, F.AT_FDCWD, name, follow=False)
        opts = MknodOptions(mode, endpoint=BoundEndpoint(self))
        try:
            t.kernel.vfs.mknod_at(t, t.creds, pop, opts)
        except SyscallError as e:
            if e.errno == errno.EEXIST:
                raise SyscallError(errno.EADDRINUSE) from None
            raise
        with mu:
            # Two binds of one socket racing: the first one wins, as the
            # bindlock makes it in Linux; the loser's inode stays.
            if self.addr is not None:
                raise SyscallError(errno.EINVAL)
            self.addr = _UNNAMED + name + b"\0"

    def push_locked(self, m: Message) -> None:
        super().push_locked(m)
        if m.control is not None and m.control.rights:
            if any(isinstance(f, UnixSocket) for f in m.control.rights):
                _namespace(self.kernel).rights_sent = True

    def dec_ref(self) -> None:
        super().dec_ref()
        # A close that leaves the socket open may have left it reachable
        # only from messages in flight.
        if not self.closed and _namespace(self.kernel).rights_sent:
            collect_garbage(self.kernel)

    def _autobind_locked(self) -> None:
        """Gives the socket a name of five hex digits (unix_autobind)."""
        ns = _namespace(self.kernel)
        for _ in range(0x100000):
            ns.next_autobind = (ns.next_autobind + 1) & 0xFFFFF
            name = b"\0" + b"%05x" % ns.next_autobind
            if name not in ns.names:
                ns.names[name] = self
                self.abstract = name
                self.addr = _UNNAMED + name
                return
        raise SyscallError(errno.ENOSPC)

    def _autobind_for_passcred(self) -> None:
        with mu:
            if self.passcred and self.addr is None:
                self._autobind_locked()

    def unbind_locked(self) -> None:
        if self.abstract is not None:
            ns = _namespace(self.kernel)
            if ns.names.get(self.abstract) is self:
                del ns.names[self.abstract]
            self.abstract = None

    def getsockname(self, t: Task) -> bytes:
        with mu:
            return self.addr if self.addr is not None else _UNNAMED

    def getpeername(self, t: Task) -> bytes:
        with mu:
            peer = self.peer
            if peer is None or (self.connection_based and self.state != CONNECTED):
                raise SyscallError(errno.ENOTCONN)
            return peer.addr if peer.addr is not None else _UNNAMED

    def message_address(self) -> bytes | None:
        return self.addr

    def unnamed_address(self) -> bytes:
        return _UNNAMED

    def _lookup(self, t: Task, addr: bytes) -> UnixSocket:
        """Returns the socket addr names (unix_find_other).

        Raises:
            SyscallError: ECONNREFUSED if nothing is bound there, EPROTOTYPE
                for a socket of another type, path lookup errors.
        """
        abstract, name = _parse(addr)
        if abstract:
            with mu:
                s = _namespace(self.kernel).names.get(name)
        else:
            pop = path_operation(t, F.AT_FDCWD, name, follow=True)
            ep = t.kernel.vfs.bound_endpoint_at(t, t.creds, pop)
            s = ep.socket() if isinstance(ep, BoundEndpoint) else None
        if s is None or s.closed:
            raise SyscallError(errno.ECONNREFUSED)
        if s.stype != self.stype:
            raise SyscallError(errno.EPROTOTYPE)
        return s

    # Connections.

    def listen(self, t: Task, backlog: int) -> None:
        with mu:
            if self.addr is None and self.connection_based:
                # unix_listen: an unbound socket cannot listen.
                raise SyscallError(errno.EINVAL)
        super().listen(t, backlog)

    def connect(self, t: Task, addr: bytes) -> None:
        if not self.connection_based:
            self._connect_dgram(t, addr)
            return
        target = self._lookup(t, addr)
        self._autobind_for_passcred()

        def make_server() -> UnixSocket:
            server = UnixSocket(t, self.stype, 0)
            server.addr = target.addr
            server.passcred = target.passcred
            return server

        if not self.connect_to_listener(t, target, make_server):
            raise SyscallError(errno.EAGAIN)

    def _connect_dgram(self, t: Task, addr: bytes) -> None:
        if len(addr) >= 2 and _FAMILY.unpack_from(addr)[0] == SK.AF_UNSPEC:
            with mu:
                self.peer = None
                self.peer_creds = None
            return
        target = self._lookup(t, addr)
        self._autobind_for_passcred()
        with mu:
            self.peer = target
            self.peer_creds = target.creds

    def listen_connected_errno(self) -> int:
        return errno.EINVAL

    def recv_unconnected(self) -> RecvResult | None:
        # unix_stream_read_generic refuses unconnected sockets with EINVAL;
        # seqpacket receives with ENOTCONN.
        if self.is_stream:
            raise SyscallError(errno.EINVAL)
        raise SyscallError(errno.ENOTCONN)

    def check_send_address_locked(self, to: bytes) -> None:
        if self.is_stream:
            raise SyscallError(
                errno.EISCONN if self.state == CONNECTED else errno.EOPNOTSUPP
            )
        # SOCK_SEQPACKET ignores the address (unix_seqpacket_sendmsg).

    # Datagrams.

    def resolve_destination(self, t: Task, to: bytes) -> object:
        return self._lookup(t, to)

    def sendmsg(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
    ) -> int:
        if not self.connection_based:
            self._autobind_for_passcred()
        return super().sendmsg(t, data, to, control, flags)

    def datagram_destination_locked(
        self, t: Task, to: bytes | None, target: object
    ) -> QueueSocket | None:
        dst = target if to is not None else self.peer
        assert dst is None or isinstance(dst, QueueSocket)
        if dst is None:
            raise SyscallError(errno.ENOTCONN)
        if dst.closed:
            if dst is self.peer:
                self.peer = None
            raise SyscallError(errno.ECONNREFUSED)
        if dst.peer is not None and dst.peer is not self:
            # unix_may_send: a connected datagram socket hears only its
            # peer.
            raise SyscallError(errno.EPERM)
        if dst.shut & RCV_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        return dst

    def attach_credentials_locked(
        self, t: Task, dst: QueueSocket, control: ControlMessages
    ) -> ControlMessages | None:
        if control.creds is None:
            c = t.creds
            control.creds = (t.pid, c.ruid, c.rgid)
        return control

    def accepting(self) -> bool:
        return self.state == LISTENING
