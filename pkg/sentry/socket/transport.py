"""QueueSocket: sockets that hand messages to each other directly.

Unix domain sockets and the loopback TCP and UDP of inet.py need no
packets: a sender appends a Message to the receiver's queue, and a
connection is a pair of sockets pointing at each other. This module holds
what they share:

- Connections (SOCK_STREAM, SOCK_SEQPACKET): listen keeps an accept queue
  of server-side sockets that connect creates already connected, as
  unix_stream_connect does; accept takes one. The queue holds backlog + 1
  connections (sk_acceptq_is_full tests "greater than").
- Streams: data has no boundaries; a send is cut into pieces as room
  appears in the peer's queue (bounded by the sender's SO_SNDBUF); a
  receive glues pieces but stops after one that carried SCM_RIGHTS, as
  unix_stream_read_generic does.
- Messages (SOCK_DGRAM, SOCK_SEQPACKET): a send is one message or nothing
  (EMSGSIZE past the send buffer); a receive returns one message,
  truncated with MSG_TRUNC if the buffer is short.
- Shutdown and close: shutting down a direction marks both ends; closing
  a connected socket shuts the peer down entirely, with ECONNRESET pending
  if data was left unread, as unix_release_sock does.

Unlike Linux, a socket closed by one thread while another blocks reading
it wakes the reader with end of file (Linux keeps the file open until the
blocked call returns).

Subclasses supply addresses (local_address, message_address), resolution
of a destination, and family rules, through the hooks at the end of the
class.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import (
    EVENT_ERR,
    EVENT_HUP,
    EVENT_IN,
    EVENT_OUT,
    EVENT_RDHUP,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
)
from pkg.sentry.socket.socket import (
    RCV_SHUTDOWN,
    SEND_SHUTDOWN,
    SHUTDOWN_MASK,
    ControlMessages,
    RecvResult,
    SocketFD,
    block,
    deadline_of,
    mu,
    sigpipe,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Connection states.
UNCONNECTED = 0
LISTENING = 1
CONNECTED = 2

# Datagrams one socket may hold unread (net.unix.max_dgram_qlen).
MAX_DGRAM_QLEN = 512

# unix_dgram_sendmsg refuses messages longer than the send buffer less
# this much.
_DGRAM_OVERHEAD = 32


class Message:
    """Message is one send as the receiver will see it.

    Attributes:
        data: the bytes; off: how many a stream receiver already took.
        control: the ancillary data (rights and credentials), or None.
        addr: the sender's address, or None.
        sender: the sending socket of a datagram.
    """

    __slots__ = ("addr", "control", "data", "off", "sender")

    def __init__(
        self,
        data: bytes,
        control: ControlMessages | None,
        addr: bytes | None,
        sender: QueueSocket | None = None,
    ) -> None:
        self.data = data
        self.off = 0
        self.control = control
        self.addr = addr
        # Told when the message is received: its writability may change.
        self.sender = sender

    def left(self) -> int:
        """Returns the bytes not yet received."""
        return len(self.data) - self.off


class QueueSocket(SocketFD):
    """QueueSocket is a socket with a queue of received Messages.

    Attributes:
        rq, rq_bytes: the received messages and their unread bytes.
        peer: the connected socket (for datagrams, the default
            destination), or None.
        state: UNCONNECTED, LISTENING or CONNECTED.
        shut: RCV_SHUTDOWN/SEND_SHUTDOWN bits.
        closed: the file has been released.
        pending, backlog: the accept queue of a listener and its bound.
        creds: the (pid, uid, gid) of whoever connected or listened,
            reported to the peer as SO_PEERCRED.
        peer_creds: the peer's creds, captured when connected.
    """

    __slots__ = (
        "backlog",
        "closed",
        "creds",
        "peer",
        "peer_creds",
        "pending",
        "rq",
        "rq_bytes",
        "shut",
        "state",
    )

    def __init__(
        self, t: Task, family: int, stype: int, protocol: int, flags: int
    ) -> None:
        super().__init__(t, family, stype, protocol, flags)
        self.rq: collections.deque[Message] = collections.deque()
        self.rq_bytes = 0
        self.peer: QueueSocket | None = None
        self.state = UNCONNECTED
        self.shut = 0
        self.closed = False
        self.pending: collections.deque[QueueSocket] = collections.deque()
        self.backlog = 0
        self.creds = task_creds(t)
        self.peer_creds: tuple[int, int, int] | None = None

    @property
    def connection_based(self) -> bool:
        """Reports whether the type has connections (stream, seqpacket)."""
        return self.stype != SK.SOCK_DGRAM

    @property
    def is_stream(self) -> bool:
        """Reports whether data has no message boundaries."""
        return self.stype == SK.SOCK_STREAM

    # Connections.

    def listen(self, t: Task, backlog: int) -> None:
        if not self.connection_based:
            raise SyscallError(errno.EOPNOTSUPP)
        with mu:
            if self.state == CONNECTED:
                raise SyscallError(self.listen_connected_errno())
            self.listen_prepare_locked(t)
            self.backlog = backlog
            if self.state != LISTENING:
                self.state = LISTENING
                self.creds = task_creds(t)
        # Connectors waiting for room may go on.
        self.wq.notify(EVENT_OUT)

    def accepting(self) -> bool:
        return self.state == LISTENING

    def accept(self, t: Task, flags: int) -> tuple[SocketFD, bytes]:
        if not self.connection_based:
            raise SyscallError(errno.EOPNOTSUPP)
        deadline = deadline_of(self.rcvtimeo)
        while True:
            with mu:
                if self.state != LISTENING:
                    raise SyscallError(errno.EINVAL)
                if self.pending:
                    s = self.pending.popleft()
                    break
                if self.nonblocking:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN)
                self.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                self.wq.unregister(entry)
        self.wq.notify(EVENT_OUT)
        if flags & SK.SOCK_NONBLOCK:
            s.flags |= SK.SOCK_NONBLOCK
        with mu:
            peer = s.peer
            addr = peer.message_address() if peer is not None else None
        return s, addr if addr is not None else self.unnamed_address()

    def connect_to_listener(
        self, t: Task, listener: QueueSocket, make_server: object
    ) -> bool:
        """Connects to listener: makes the server-side socket with
        make_server() (under mu), links the two and queues it for accept.

        Returns:
            True when connected; False for a non-blocking connect that must
            report EINPROGRESS (TCP) because the accept queue is full.

        Raises:
            SyscallError: ECONNREFUSED if listener does not listen, EAGAIN
                for a full queue when non-blocking and unix, ERESTARTSYS or
                EINTR if interrupted.
        """
        deadline = deadline_of(self.sndtimeo)
        while True:
            with mu:
                if listener.closed or listener.state != LISTENING:
                    raise SyscallError(errno.ECONNREFUSED)
                if self.state == CONNECTED:
                    raise SyscallError(errno.EISCONN)
                if self.state == LISTENING:
                    raise SyscallError(errno.EINVAL)
                if len(listener.pending) <= listener.backlog:
                    server = make_server()  # type: ignore[operator]
                    assert isinstance(server, QueueSocket)
                    self.peer = server
                    server.peer = self
                    self.state = server.state = CONNECTED
                    server.creds = listener.creds
                    self.creds = task_creds(t)
                    self.peer_creds = listener.creds
                    server.peer_creds = self.creds
                    # The listener's queue holds the file's first reference.
                    listener.pending.append(server)
                    break
                if self.nonblocking:
                    return False
                entry = Entry(lambda _m: t.wake(), EVENT_OUT)
                listener.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                listener.wq.unregister(entry)
        listener.wq.notify(EVENT_IN)
        self.wq.notify(EVENT_OUT)
        return True

    def connect_pair(self, other: QueueSocket) -> None:
        """Connects two new sockets to each other (socketpair(2))."""
        with mu:
            self.peer = other
            other.peer = self
            if self.connection_based:
                self.state = other.state = CONNECTED
            self.peer_creds = other.creds
            other.peer_creds = self.creds

    def peercred(self) -> tuple[int, int, int]:
        with mu:
            if self.peer_creds is None:
                return super().peercred()
            return self.peer_creds

    def shutdown(self, t: Task, how: int) -> None:
        with mu:
            self.shutdown_check_locked()
            bits = {
                SK.SHUT_RD: RCV_SHUTDOWN,
                SK.SHUT_WR: SEND_SHUTDOWN,
                SK.SHUT_RDWR: SHUTDOWN_MASK,
            }[how]
            self.shut |= bits
            peer = self.peer
            if peer is not None and self.connection_based:
                # The peer's opposite directions close too.
                peer_bits = self.peer_shutdown_bits(bits)
                peer.shut |= peer_bits
            else:
                peer = None
        self.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_RDHUP)
        if peer is not None:
            peer.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_RDHUP)

    def release(self) -> None:
        with mu:
            self.closed = True
            peer = self.peer
            pending = list(self.pending)
            self.pending.clear()
            dropped = list(self.rq)
            unread = bool(self.rq)
            self.rq.clear()
            self.rq_bytes = 0
            self.shut = SHUTDOWN_MASK
            if peer is not None and self.connection_based:
                peer.shut = SHUTDOWN_MASK
                if unread or self.reset_on_close():
                    peer.so_error = errno.ECONNRESET
            self.unbind_locked()
        for m in dropped:
            if m.control is not None:
                m.control.release()
        for s in pending:
            s.dec_ref()
        if peer is not None:
            peer.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_ERR | EVENT_RDHUP)
        self.wq.notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_ERR)

    # Sending.

    def sendmsg(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
    ) -> int:
        dropped = ControlMessages()
        try:
            if flags & SK.MSG_OOB:
                raise SyscallError(self.oob_errno())
            if self.is_stream:
                return self._send_stream(t, data, to, control, flags, dropped)
            return self._send_message(t, data, to, control, flags, dropped)
        except SyscallError as e:
            control.release()
            # Only streams raise SIGPIPE: unix datagram and seqpacket sends
            # fail quietly (unix_dgram_sendmsg).
            if e.errno == errno.EPIPE and self.is_stream:
                if not flags & SK.MSG_NOSIGNAL:
                    sigpipe(t)
            raise
        finally:
            # Rights of a message that went nowhere, dropped outside mu:
            # closing a socket notifies its waiters.
            dropped.release()

    def _connected_peer_locked(self) -> QueueSocket:
        """Returns the peer a connection-based send goes to, or raises its
        error (EPIPE after shutdown or the peer's close, ENOTCONN)."""
        peer = self.peer
        if self.state != CONNECTED or peer is None:
            raise SyscallError(self.send_unconnected_errno())
        if self.so_error and self.send_reports_error():
            err, self.so_error = self.so_error, 0
            raise SyscallError(err)
        if self.shut & SEND_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        if peer.closed or peer.shut & RCV_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        return peer

    def _send_stream(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
        dropped: ControlMessages,
    ) -> int:
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        deadline = deadline_of(self.sndtimeo)
        n = len(data)
        total = 0
        while True:
            with mu:
                if to is not None:
                    self.check_send_address_locked(to)
                try:
                    peer = self._connected_peer_locked()
                except SyscallError:
                    if total:
                        return total
                    raise
                if n == 0:
                    dropped.rights, control.rights = control.rights, None
                    return 0
                room = self.sndbuf - peer.rq_bytes
                wrote = 0
                if room > 0:
                    chunk = data[total : total + room]
                    ctl = None
                    if total == 0:
                        ctl = self.attach_credentials_locked(t, peer, control)
                    peer.push_locked(Message(chunk, ctl, self.message_address()))
                    wrote = len(chunk)
                    total += wrote
                if total < n and not nonblock:
                    # The reader notifies its peer (this socket) as it
                    # makes room, which is also what pollers of this
                    # socket wait for.
                    entry = Entry(lambda _m: t.wake(), EVENT_OUT | EVENT_ERR)
                    self.wq.register(entry)
            if wrote:
                peer.wq.notify(EVENT_IN | EVENT_RDNORM)
            if total == n:
                return n
            if nonblock:
                if total:
                    return total
                raise SyscallError(errno.EAGAIN)
            try:
                block(t, deadline)
            except SyscallError:
                if total:
                    return total
                raise
            finally:
                self.wq.unregister(entry)

    def _send_message(
        self,
        t: Task,
        data: bytes,
        to: bytes | None,
        control: ControlMessages,
        flags: int,
        dropped: ControlMessages,
    ) -> int:
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        deadline = deadline_of(self.sndtimeo)
        self.check_message_size(len(data))
        target = None
        if to is not None and not self.connection_based:
            target = self.resolve_destination(t, to)
        while True:
            with mu:
                if self.connection_based:
                    if to is not None:
                        self.check_send_address_locked(to)
                    dst = self._connected_peer_locked()
                else:
                    dst = self.datagram_destination_locked(t, to, target)
                    if dst is None:
                        # Dropped, as a datagram to nobody is.
                        dropped.rights, control.rights = control.rights, None
                        return len(data)
                if self.has_room_locked(dst, len(data)):
                    ctl = self.attach_credentials_locked(t, dst, control)
                    addr = self.message_address()
                    dst.push_locked(Message(data, ctl, addr, self))
                    break
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_OUT | EVENT_ERR)
                dst.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                dst.wq.unregister(entry)
        dst.wq.notify(EVENT_IN | EVENT_RDNORM)
        return len(data)

    def check_message_size(self, n: int) -> None:
        """Refuses a message that can never fit (EMSGSIZE)."""
        if n > self.sndbuf - _DGRAM_OVERHEAD:
            raise SyscallError(errno.EMSGSIZE)

    def has_room_locked(self, dst: QueueSocket, n: int) -> bool:
        """Reports whether dst can take a message of n bytes now."""
        if not dst.rq:
            return True
        return len(dst.rq) <= MAX_DGRAM_QLEN and dst.rq_bytes + n <= self.sndbuf

    def push_locked(self, m: Message) -> None:
        """Appends a received message."""
        self.rq.append(m)
        self.rq_bytes += len(m.data)

    # Receiving.

    def recvmsg(self, t: Task, length: int, flags: int) -> RecvResult:
        if flags & SK.MSG_OOB:
            raise SyscallError(self.oob_errno())
        if self.is_stream:
            r = self._recv_stream(t, length, flags)
        else:
            r = self._recv_message(t, length, flags)
        return r

    def _recv_error_locked(self) -> RecvResult | None:
        """Returns end of file, or raises the error, of a receive that
        found nothing queued; None if it must wait."""
        if self.so_error:
            err, self.so_error = self.so_error, 0
            raise SyscallError(err)
        if self.connection_based and self.state != CONNECTED:
            eof = self.recv_unconnected()
            if eof is not None:
                return eof
        if self.shut & RCV_SHUTDOWN:
            return RecvResult(b"", 0)
        return None

    def _recv_stream(self, t: Task, length: int, flags: int) -> RecvResult:
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        peek = bool(flags & SK.MSG_PEEK)
        waitall = bool(flags & SK.MSG_WAITALL) and not peek
        deadline = deadline_of(self.rcvtimeo)
        parts: list[bytes] = []
        got = 0
        control: ControlMessages | None = None
        addr: bytes | None = None
        while True:
            with mu:
                if self.rq and length:
                    got, control, addr = self._take_stream_locked(
                        parts, got, length, peek, control, addr
                    )
                elif self.rq and not length:
                    return RecvResult(b"", 0)
                done = got >= length or (got and not waitall)
                done = done or (control is not None and bool(control.rights))
                if not done and not self.rq:
                    if got:
                        if self.so_error or self.shut & RCV_SHUTDOWN:
                            done = True
                    else:
                        eof = self._recv_error_locked()
                        if eof is not None:
                            return eof
                if not done and nonblock:
                    if got:
                        done = True
                    else:
                        raise SyscallError(errno.EAGAIN)
                if not done:
                    entry = Entry(lambda _m: t.wake(), EVENT_IN | EVENT_HUP)
                    self.wq.register(entry)
                peer = self.peer
            if got and not peek and peer is not None:
                peer.wq.notify(EVENT_OUT | EVENT_WRNORM)
            if done:
                return RecvResult(b"".join(parts), got, 0, addr, control)
            try:
                block(t, deadline)
            except SyscallError:
                if got:
                    return RecvResult(b"".join(parts), got, 0, addr, control)
                raise
            finally:
                self.wq.unregister(entry)

    def _take_stream_locked(
        self,
        parts: list[bytes],
        got: int,
        length: int,
        peek: bool,
        control: ControlMessages | None,
        addr: bytes | None,
    ) -> tuple[int, ControlMessages | None, bytes | None]:
        """Moves queued stream data into parts, as far as length and the
        message boundaries that matter (rights, credentials) allow."""
        i = 0
        while got < length and i < len(self.rq):
            m = self.rq[i]
            mctl = m.control
            mcreds = mctl.creds if mctl is not None else None
            if got and self.passcred and control is not None:
                # Never glue the data of different writers (check_creds).
                if mcreds != control.creds:
                    break
            if got == 0:
                addr = m.addr
            take = min(length - got, m.left())
            parts.append(m.data[m.off : m.off + take])
            got += take
            rights = None
            if mctl is not None and mctl.rights:
                if peek:
                    rights = _dup_rights(mctl.rights)
                else:
                    rights = mctl.rights
                    mctl.rights = None
            if control is None:
                control = ControlMessages(rights, mcreds)
            elif rights:
                control.rights = rights
            if peek:
                i += 1
            else:
                m.off += take
                self.rq_bytes -= take
                if m.left() == 0:
                    self.rq.popleft()
            if rights:
                break
        return got, control, addr

    def _recv_message(self, t: Task, length: int, flags: int) -> RecvResult:
        nonblock = self.nonblocking or bool(flags & SK.MSG_DONTWAIT)
        peek = bool(flags & SK.MSG_PEEK)
        deadline = deadline_of(self.rcvtimeo)
        while True:
            with mu:
                if self.rq:
                    m = self.rq[0]
                    if not peek:
                        self.rq.popleft()
                        self.rq_bytes -= len(m.data)
                    break
                eof = self._recv_error_locked()
                if eof is not None:
                    return eof
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN | EVENT_HUP)
                self.wq.register(entry)
            try:
                block(t, deadline)
            finally:
                self.wq.unregister(entry)
        if not peek:
            self.wq.notify(EVENT_OUT | EVENT_WRNORM)
            peer = self.peer
            if peer is not None and peer is not self:
                peer.wq.notify(EVENT_OUT | EVENT_WRNORM)
            sender = m.sender
            if sender is not None and sender not in (self, peer):
                sender.wq.notify(EVENT_OUT | EVENT_WRNORM)
        data = m.data[:length]
        out_flags = SK.MSG_TRUNC if len(m.data) > length else 0
        n = len(m.data) if flags & SK.MSG_TRUNC else len(data)
        control = m.control
        if control is not None:
            if peek:
                control = ControlMessages(_dup_rights(control.rights), control.creds)
            else:
                m.control = None
        return RecvResult(data, n, out_flags, m.addr, control)

    # State.

    def readiness(self, mask: int) -> int:
        ready = 0
        with mu:
            if self.so_error:
                ready |= EVENT_ERR
            if self.shut == SHUTDOWN_MASK:
                ready |= EVENT_HUP
            if self.shut & RCV_SHUTDOWN:
                ready |= EVENT_RDHUP | EVENT_IN | EVENT_RDNORM
            if self.rq or (self.state == LISTENING and self.pending):
                ready |= EVENT_IN | EVENT_RDNORM
            if self.connection_based and self.state == UNCONNECTED:
                ready |= self.unconnected_events()
            if self.state != LISTENING and self._writable_locked():
                ready |= EVENT_OUT | EVENT_WRNORM
        return ready & (mask | EVENT_HUP | EVENT_ERR)

    def _writable_locked(self) -> bool:
        peer = self.peer
        if self.connection_based and self.state != CONNECTED:
            return self.unconnected_writable()
        if peer is None or peer.closed:
            return True
        if self.is_stream:
            return peer.rq_bytes < self.sndbuf
        if not self.connection_based and peer.peer not in (None, self):
            return True
        return self.has_room_locked(peer, 1)

    def socket_ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with mu:
                if self.state == LISTENING:
                    raise SyscallError(errno.EINVAL)
                if self.is_stream or not self.rq:
                    n = self.rq_bytes
                else:
                    n = len(self.rq[0].data)
            t.mm.write_i32(arg, n)
            return 0
        if cmd == I.TIOCOUTQ:
            with mu:
                peer = self.peer
                n = peer.rq_bytes if peer is not None and self.is_stream else 0
            t.mm.write_i32(arg, n)
            return 0
        raise SyscallError(errno.ENOTTY)

    # Hooks for the families.

    def message_address(self) -> bytes | None:
        """Returns the address a receiver sees as the sender's, or None
        for an unnamed socket."""
        return None

    def unnamed_address(self) -> bytes:
        """Returns what accept reports for a peer without an address."""
        return b""

    def attach_credentials_locked(
        self, t: Task, dst: QueueSocket, control: ControlMessages
    ) -> ControlMessages | None:
        """Returns the control data to queue with a message to dst."""
        if control.rights or control.creds:
            return control
        return None

    def resolve_destination(self, t: Task, to: bytes) -> object:
        """Looks up sendto's address on a datagram socket, before mu is
        taken (a path lookup may wait for the gofer)."""
        return None

    def datagram_destination_locked(
        self, t: Task, to: bytes | None, target: object
    ) -> QueueSocket | None:
        """Returns where a datagram goes (target, which resolve_destination
        found for to, or the connected peer), None to drop it silently, or
        raises the family's error."""
        raise SyscallError(errno.EOPNOTSUPP)

    def check_send_address_locked(self, to: bytes) -> None:
        """Checks sendto's address on a connection-based socket (unix
        refuses it, TCP ignores it)."""

    def send_reports_error(self) -> bool:
        """Reports whether a send fails with a pending SO_ERROR (TCP, as
        tcp_sendmsg does; unix sends ignore it)."""
        return False

    def send_unconnected_errno(self) -> int:
        """The errno of a send on an unconnected connection-based
        socket."""
        return errno.ENOTCONN

    def recv_unconnected(self) -> RecvResult | None:
        """Returns (or raises) what a receive on an unconnected
        connection-based socket gives; None to wait."""
        raise SyscallError(errno.ENOTCONN)

    def unconnected_events(self) -> int:
        """The events an unconnected connection-based socket reports."""
        return EVENT_HUP

    def unconnected_writable(self) -> bool:
        """Reports whether an unconnected connection-based socket polls
        writable (unix: yes; TCP: no)."""
        return True

    def listen_connected_errno(self) -> int:
        """The errno of listen on a connected socket."""
        return errno.EINVAL

    def listen_prepare_locked(self, t: Task) -> None:
        """Prepares listen (a TCP socket binds a port)."""

    def peer_shutdown_bits(self, bits: int) -> int:
        """Returns what shutting down bits does to the peer: for unix,
        each direction closes on both ends (unix_shutdown)."""
        out = RCV_SHUTDOWN if bits & SEND_SHUTDOWN else 0
        return out | (SEND_SHUTDOWN if bits & RCV_SHUTDOWN else 0)

    def shutdown_check_locked(self) -> None:
        """Refuses shutdown where the family does (ENOTCONN)."""

    def reset_on_close(self) -> bool:
        """Reports whether closing resets the peer even without unread
        data (TCP with SO_LINGER of 0)."""
        return False

    def oob_errno(self) -> int:
        """The errno of MSG_OOB."""
        return errno.EOPNOTSUPP

    def unbind_locked(self) -> None:
        """Releases the socket's address when it closes."""


def task_creds(t: Task) -> tuple[int, int, int]:
    """Returns the (pid, uid, gid) that SO_PEERCRED reports for t."""
    c = t.creds
    return (t.pid, c.euid, c.egid)


def _dup_rights(rights: list | None) -> list | None:
    if not rights:
        return rights
    for f in rights:
        f.inc_ref()
    return list(rights)
