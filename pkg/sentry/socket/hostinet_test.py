"""Tests of hostinet's host-backed sockets, driven without a platform: a
task of a fake kernel calls the operations on non-blocking sockets, over
the host's loopback only."""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.kernel_testutil import FakeKernel
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT
from pkg.sentry.socket import netlink
from pkg.sentry.socket.hostinet import HostSocket, new_host_socket, proc_net_rows
from pkg.sentry.socket.socket import ControlMessages, int_bytes
from pkg.sentry.vfs.vfs import VirtualFilesystem

_NB = SK.SOCK_NONBLOCK
_LOOPBACK = bytes([127, 0, 0, 1])


@pytest.fixture
def t() -> Iterator[Task]:
    k = FakeKernel()
    k.vfs = VirtualFilesystem()  # type: ignore[attr-defined]
    tg = k.new_process()
    yield tg.tasks[0]
    k.close()


def _errno(fn: object, *args: object) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)  # type: ignore[operator]
    return e.value.errno


def _v4(port: int) -> bytes:
    return SK.SOCKADDR_IN.pack(SK.AF_INET, port.to_bytes(2, "big"), _LOOPBACK)


def _port(s: HostSocket, t: Task) -> int:
    return int.from_bytes(s.getsockname(t)[2:4], "big")


def _until(s: HostSocket, event: int) -> None:
    """Waits (on the host descriptor, up to a minute) for an event."""
    p = select.poll()
    p.register(s.host_poll_fd(), event)
    assert p.poll(60_000), "the host socket never became ready"
    assert s.readiness(event) & event


def _sock(t: Task, family: int, stype: int) -> HostSocket:
    s = new_host_socket(t, family, stype, 0, _NB)
    assert isinstance(s, HostSocket)
    return s


def test_tcp_connection_over_host_loopback(t: Task) -> None:
    lst = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    lst.bind(t, _v4(0))
    lst.listen(t, 8)
    assert lst.getsockopt(t, SK.SOL_SOCKET, SK.SO_ACCEPTCONN) == int_bytes(1)
    assert _errno(lst.accept, t, 0) == errno.EAGAIN

    c = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    try:
        c.connect(t, _v4(_port(lst, t)))
    except SyscallError as e:
        assert e.errno == errno.EINPROGRESS
    _until(lst, EVENT_IN)
    s, peer = lst.accept(t, _NB)
    assert peer == c.getsockname(t)[:16]
    assert s.getpeername(t) == c.getsockname(t)
    _until(c, EVENT_OUT)

    assert c.sendmsg(t, b"hello", None, ControlMessages(), 0) == 5
    _until(s, EVENT_IN)
    r = s.recvmsg(t, 100, SK.MSG_PEEK)
    assert (r.data, r.length) == (b"hello", 5)
    assert s.recvmsg(t, 100, 0).data == b"hello"
    assert _errno(s.recvmsg, t, 100, 0) == errno.EAGAIN

    c.shutdown(t, SK.SHUT_WR)
    _until(s, EVENT_IN)
    assert s.recvmsg(t, 100, 0).length == 0
    for f in (c, s, lst):
        f.dec_ref()


def test_udp_datagrams_carry_address_and_packet_info(t: Task) -> None:
    r = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    r.bind(t, _v4(0))
    r.setsockopt(t, SK.SOL_IP, SK.IP_PKTINFO, int_bytes(1))
    w = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    assert w.sendmsg(t, b"dgram", _v4(_port(r, t)), ControlMessages(), 0) == 5
    _until(r, EVENT_IN)
    got = r.recvmsg(t, 2, 0)
    assert got.data == b"dg"
    assert got.flags & SK.MSG_TRUNC
    # From the wildcard w was bound to on send, by the loopback.
    assert got.addr == _v4(_port(w, t))
    assert got.cmsgs is not None
    assert [(lvl, typ) for lvl, typ, _ in got.cmsgs] == [(SK.SOL_IP, SK.IP_PKTINFO)]
    r.dec_ref()
    w.dec_ref()


def test_options_pass_the_allowlist_only(t: Task) -> None:
    s = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    s.setsockopt(t, SK.SOL_TCP, SK.TCP_NODELAY, int_bytes(1))
    assert s.getsockopt(t, SK.SOL_TCP, SK.TCP_NODELAY) == int_bytes(1)
    # TCP_ULP would load a protocol into the host kernel.
    assert _errno(s.setsockopt, t, SK.SOL_TCP, 31, b"tls") == errno.ENOPROTOOPT
    # An unknown level ends in ip_setsockopt, as in Linux.
    assert _errno(s.getsockopt, t, 9999, 1) == errno.EOPNOTSUPP
    # Timeouts are the sentry's own: they bound its waits.
    tv = SK.TIMEVAL.pack(3, 0)
    s.setsockopt(t, SK.SOL_SOCKET, SK.SO_RCVTIMEO_OLD, tv)
    assert s.rcvtimeo == 3.0
    assert s.getsockopt(t, SK.SOL_SOCKET, SK.SO_RCVTIMEO_OLD) == tv
    assert s.getsockopt(t, SK.SOL_SOCKET, SK.SO_TYPE) == int_bytes(SK.SOCK_STREAM)
    s.dec_ref()


def test_ipv6_socket(t: Task) -> None:
    s = _sock(t, SK.AF_INET6, SK.SOCK_DGRAM)
    s.setsockopt(t, SK.SOL_IPV6, SK.IPV6_V6ONLY, int_bytes(1))
    assert s.getsockopt(t, SK.SOL_IPV6, SK.IPV6_V6ONLY) == int_bytes(1)
    assert s.getsockopt(t, SK.SOL_SOCKET, SK.SO_DOMAIN) == int_bytes(SK.AF_INET6)
    s.dec_ref()


@pytest.mark.parametrize(
    ("stype", "protocol", "want"),
    [
        (SK.SOCK_RAW, SK.IPPROTO_ICMP, errno.EPERM),
        (SK.SOCK_DGRAM, SK.IPPROTO_ICMP, errno.EACCES),
        (SK.SOCK_DGRAM, SK.IPPROTO_TCP, errno.EPROTONOSUPPORT),
        (SK.SOCK_SEQPACKET, 0, errno.ESOCKTNOSUPPORT),
    ],
)
def test_refused_kinds(t: Task, stype: int, protocol: int, want: int) -> None:
    assert _errno(new_host_socket, t, SK.AF_INET, stype, protocol, 0) == want


def test_netlink_dumps_are_split_into_pages() -> None:
    msg = struct.pack("<IHHII", 1000, 16, 2, 1, 0).ljust(1000, b"\0")
    parts = netlink._datagrams(msg * 10)
    assert [len(p) for p in parts] == [3000, 3000, 3000, 1000]
    assert b"".join(parts) == msg * 10


def test_blocking_receive_waits_in_the_sentry(t: Task) -> None:
    r = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    r.set_status_flags(0)
    assert not r.nonblocking
    r.bind(t, _v4(0))
    # SO_RCVTIMEO bounds the wait on the host descriptor.
    r.rcvtimeo = 0.05
    assert _errno(r.recvmsg, t, 10, 0) == errno.EAGAIN
    # An interrupted wait restarts without a timeout, and is EINTR with
    # one (sock_intr_errno).
    t.interrupted = True
    assert _errno(r.recvmsg, t, 10, 0) == errno.EINTR
    r.rcvtimeo = 0.0
    assert _errno(r.recvmsg, t, 10, 0) == errno.ERESTARTSYS
    t.interrupted = False
    # Data already there is received without waiting.
    w = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    w.sendmsg(t, b"x", _v4(_port(r, t)), ControlMessages(), 0)
    assert r.recvmsg(t, 10, 0).data == b"x"
    r.dec_ref()
    w.dec_ref()


def test_sent_control_messages_reach_the_host(t: Task) -> None:
    r = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    r.bind(t, _v4(0))
    r.setsockopt(t, SK.SOL_IP, 12, int_bytes(1))  # IP_RECVTTL
    w = _sock(t, SK.AF_INET, SK.SOCK_DGRAM)
    ttl = ControlMessages(host=[(SK.SOL_IP, SK.IP_TTL, int_bytes(7))])
    assert w.sendmsg(t, b"x", _v4(_port(r, t)), ttl, 0) == 1
    _until(r, EVENT_IN)
    assert r.recvmsg(t, 10, 0).cmsgs == [(SK.SOL_IP, SK.IP_TTL, int_bytes(7))]
    r.dec_ref()
    w.dec_ref()


def test_proc_net_rows_describe_host_sockets(t: Task) -> None:
    lst = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    unbound = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    lst.bind(t, _v4(0))
    lst.listen(t, 1)
    rows = proc_net_rows(t.kernel, SK.SOCK_STREAM, SK.AF_INET)  # type: ignore[arg-type]
    # The unbound socket is not listed, as Linux lists hashed sockets.
    assert [(r.local, r.remote, r.state) for r in rows] == [
        ((bytes(10) + b"\xff\xff" + _LOOPBACK, _port(lst, t)), (bytes(16), 0), 10)
    ]
    assert proc_net_rows(t.kernel, SK.SOCK_DGRAM, SK.AF_INET) == []  # type: ignore[arg-type]
    lst.dec_ref()
    unbound.dec_ref()
    assert proc_net_rows(t.kernel, SK.SOCK_STREAM, SK.AF_INET) == []  # type: ignore[arg-type]


def test_waitall_fills_buffers_larger_than_one_host_receive(t: Task) -> None:
    lst = _sock(t, SK.AF_INET, SK.SOCK_STREAM)
    lst.bind(t, _v4(0))
    lst.listen(t, 1)
    n = 3 << 20

    def send() -> None:
        # A plain host socket in another thread: the sandbox's socket
        # below waits for all of it.
        with socket.create_connection(("127.0.0.1", _port(lst, t))) as c:
            c.sendall(b"y" * n)

    sender = threading.Thread(target=send)
    sender.start()
    _until(lst, EVENT_IN)
    s, _ = lst.accept(t, 0)
    # More than one host receive (_MAX_RECV) in one call; then the end.
    r = s.recvmsg(t, n, SK.MSG_WAITALL)
    sender.join()
    assert r.length == n and r.data == b"y" * n
    assert s.recvmsg(t, 10, SK.MSG_WAITALL).length == 0
    s.dec_ref()
    lst.dec_ref()
