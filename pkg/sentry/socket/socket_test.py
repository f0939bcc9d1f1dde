"""Tests of the socket implementations, driven without a platform: tasks of
a fake kernel call the operations directly (non-blocking, so no test
sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.kernel_testutil import FakeKernel
from pkg.sentry.kernel.task import Task
from pkg.sentry.socket import procnet
from pkg.sentry.socket.inet import InetSocket
from pkg.sentry.socket.socket import ControlMessages
from pkg.sentry.socket.unix import UnixSocket
from pkg.sentry.vfs.file_description import FileDescription
from pkg.sentry.vfs.vfs import VirtualFilesystem

_NB = SK.SOCK_NONBLOCK


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


def _pair(t: Task, stype: int) -> tuple[UnixSocket, UnixSocket]:
    a, b = UnixSocket(t, stype, _NB), UnixSocket(t, stype, _NB)
    a.connect_pair(b)
    return a, b


def _abstract(name: bytes) -> bytes:
    return SK.AF_UNIX.to_bytes(2, "little") + b"\0" + name


def test_stream_glues_sends_and_stops_after_rights(t: Task) -> None:
    a, b = _pair(t, SK.SOCK_STREAM)
    assert a.sendmsg(t, b"ab", None, ControlMessages(), 0) == 2
    f = FileDescription(0)
    ctl = ControlMessages(rights=[f])
    f.inc_ref()
    assert a.sendmsg(t, b"cd", None, ctl, 0) == 2
    assert a.sendmsg(t, b"ef", None, ControlMessages(), 0) == 2
    r = b.recvmsg(t, 100, 0)
    # Data before the rights joins them; the read stops after them.
    assert r.data == b"abcd"
    assert r.control is not None and r.control.rights == [f]
    r.control.release()
    assert b.recvmsg(t, 100, 0).data == b"ef"
    assert _errno(b.recvmsg, t, 100, 0) == errno.EAGAIN


def test_unreceived_rights_are_released_on_close(t: Task) -> None:
    a, b = _pair(t, SK.SOCK_DGRAM)
    released = []

    class Tracked(FileDescription):
        def release(self) -> None:
            released.append(self)

    f = Tracked(0)
    a.sendmsg(t, b"x", None, ControlMessages(rights=[f]), 0)
    assert not released
    b.dec_ref()
    assert released == [f]
    a.dec_ref()


def test_datagrams_keep_boundaries_and_truncate(t: Task) -> None:
    a, b = _pair(t, SK.SOCK_DGRAM)
    a.sendmsg(t, b"hello", None, ControlMessages(), 0)
    a.sendmsg(t, b"", None, ControlMessages(), 0)
    r = b.recvmsg(t, 2, SK.MSG_PEEK | SK.MSG_TRUNC)
    assert (r.data, r.length, r.flags) == (b"he", 5, SK.MSG_TRUNC)
    r = b.recvmsg(t, 2, 0)
    assert (r.data, r.length) == (b"he", 2)
    assert b.recvmsg(t, 10, 0).length == 0


def test_close_with_unread_data_resets_the_peer(t: Task) -> None:
    a, b = _pair(t, SK.SOCK_STREAM)
    b.sendmsg(t, b"unread", None, ControlMessages(), 0)
    a.dec_ref()
    assert _errno(b.recvmsg, t, 10, 0) == errno.ECONNRESET
    assert b.recvmsg(t, 10, 0).data == b""
    assert _errno(b.sendmsg, t, b"x", None, ControlMessages(), SK.MSG_NOSIGNAL) == (
        errno.EPIPE
    )


def test_abstract_listener_backlog(t: Task) -> None:
    name = _abstract(b"backlog")
    lst = UnixSocket(t, SK.SOCK_STREAM, _NB)
    lst.bind(t, name)
    lst.listen(t, 0)
    c1 = UnixSocket(t, SK.SOCK_STREAM, _NB)
    c1.connect(t, name)
    c2 = UnixSocket(t, SK.SOCK_STREAM, _NB)
    assert _errno(c2.connect, t, name) == errno.EAGAIN
    s, addr = lst.accept(t, 0)
    assert addr == SK.AF_UNIX.to_bytes(2, "little")
    assert s.getsockname(t) == name
    c2.connect(t, name)
    lst.dec_ref()
    # The name is free again once its socket is gone.
    again = UnixSocket(t, SK.SOCK_STREAM, _NB)
    again.bind(t, name)


def _inet(t: Task, stype: int = SK.SOCK_STREAM) -> InetSocket:
    return InetSocket(t, SK.AF_INET, stype, 0, _NB)


def _v4(ip: bytes, port: int) -> bytes:
    return SK.SOCKADDR_IN.pack(SK.AF_INET, port.to_bytes(2, "big"), ip)


def test_ports_conflict_unless_reused(t: Task) -> None:
    lo = bytes([127, 0, 0, 1])
    a = _inet(t)
    a.bind(t, _v4(lo, 0))
    port = int.from_bytes(a.getsockname(t)[2:4], "big")
    assert 32768 <= port <= 60999
    b = _inet(t)
    assert _errno(b.bind, t, _v4(bytes(4), port)) == errno.EADDRINUSE
    one = (1).to_bytes(4, "little")
    a.setsockopt(t, SK.SOL_SOCKET, SK.SO_REUSEADDR, one)
    b.setsockopt(t, SK.SOL_SOCKET, SK.SO_REUSEADDR, one)
    b.bind(t, _v4(lo, port))
    a.listen(t, 1)
    assert _errno(b.listen, t, 1) == errno.EADDRINUSE


def test_tcp_connect_refused_and_unreachable(t: Task) -> None:
    c = _inet(t)
    assert _errno(c.connect, t, _v4(bytes([10, 0, 0, 1]), 80)) == errno.ENETUNREACH
    assert _errno(c.connect, t, _v4(bytes([127, 0, 0, 1]), 9)) == errno.EINPROGRESS
    assert c.take_error() == errno.ECONNREFUSED


def test_udp_delivers_with_sender_address(t: Task) -> None:
    lo = bytes([127, 0, 0, 1])
    r = _inet(t, SK.SOCK_DGRAM)
    r.bind(t, _v4(lo, 0))
    s = _inet(t, SK.SOCK_DGRAM)
    s.sendmsg(t, b"dgram", r.getsockname(t), ControlMessages(), 0)
    got = r.recvmsg(t, 100, 0)
    assert got.data == b"dgram"
    # The sender stays bound to the wildcard address; the receiver sees the
    # source address the route gave.
    name = s.getsockname(t)
    assert name[4:8] == bytes(4)
    assert got.addr == _v4(lo, int.from_bytes(name[2:4], "big"))


def test_proc_net_tables(t: Task) -> None:
    lo = bytes([127, 0, 0, 1])
    lst = _inet(t)
    lst.bind(t, _v4(lo, 0))
    lst.listen(t, 1)
    port = int.from_bytes(lst.getsockname(t)[2:4], "big")
    tcp = procnet.net_tcp(t.kernel).decode().splitlines()
    assert tcp[0].startswith("  sl  local_address rem_address")
    assert len(tcp[0]) == 149
    assert f"0100007F:{port:04X} 00000000:0000 0A" in tcp[1]
    u = UnixSocket(t, SK.SOCK_STREAM, _NB)
    u.bind(t, _abstract(b"procnet"))
    u.listen(t, 1)
    unix = procnet.net_unix(t.kernel).decode()
    assert " 00010000 0001 01 " in unix
    assert unix.rstrip().endswith("@procnet")
    assert b"    lo:       0" in procnet.net_dev(t.kernel)


def test_cycles_of_passed_sockets_are_collected(t: Task) -> None:
    released = []

    class Tracked(UnixSocket):
        def release(self) -> None:
            released.append(self)
            super().release()

    a, b = Tracked(t, SK.SOCK_DGRAM, _NB), Tracked(t, SK.SOCK_DGRAM, _NB)
    a.connect_pair(b)
    # Each end travels to the other: only the messages keep them open once
    # the descriptors are closed.
    a.inc_ref()
    a.sendmsg(t, b"a", None, ControlMessages(rights=[a]), 0)
    b.inc_ref()
    b.sendmsg(t, b"b", None, ControlMessages(rights=[b]), 0)
    # a is queued on b, which is still open: reachable.
    a.dec_ref()
    assert not released
    b.dec_ref()
    assert sorted(map(id, released)) == sorted([id(a), id(b)])


def test_reachable_passed_sockets_survive_collection(t: Task) -> None:
    a, b = _pair(t, SK.SOCK_DGRAM)
    c = UnixSocket(t, SK.SOCK_STREAM, _NB)
    c.inc_ref()
    a.sendmsg(t, b"c", None, ControlMessages(rights=[c]), 0)
    c.dec_ref()
    # b is still open, so c, queued on b, is reachable.
    a.dec_ref()
    assert not c.closed
    r = b.recvmsg(t, 10, 0)
    assert r.control is not None and r.control.rights == [c]
