"""Length-framed messages with attached descriptors over Unix sockets.

A frame is a 4-byte little-endian length followed by that many bytes of
payload (a serialized protobuf message, usually). Host descriptors travel
with a frame as SCM_RIGHTS ancillary data sent together with its length
word, so the receiver collects them with the first recvmsg of the frame.
Stream sockets are used so that a frame may be larger than the socket
buffer.

Unix socket paths are limited to 107 bytes. State directories of container
clients can be longer than that, so `bind` and `connect` here reach a long
path through /proc/self/fd/N of its directory.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import socket
import struct
from collections.abc import Sequence

_HEADER = struct.Struct("<I")

# The largest frame accepted: control and file-protocol messages are small;
# this only bounds what a broken or hostile peer can make us allocate.
MAX_FRAME = 16 << 20

# The most descriptors one frame may carry (SCM_MAX_FD is 253).
MAX_FDS = 64

# sun_path holds 108 bytes including the terminating NUL.
_MAX_SUN_PATH = 107


class ConnectionClosed(EOFError):
    """ConnectionClosed is raised when the peer closed the connection at a
    frame boundary."""


class Conn:
    """Conn sends and receives frames on a connected stream socket.

    The Conn owns the socket. Descriptors received are the caller's to close.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def from_fd(cls, fd: int) -> Conn:
        """Takes ownership of a connected socket descriptor."""
        return cls(socket.socket(fileno=fd))

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self.sock.fileno()

    def close(self) -> None:
        """Closes the socket."""
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, payload: bytes, fds: Sequence[int] = ()) -> None:
        """Sends one frame carrying payload and duplicates of fds."""
        if len(fds) > MAX_FDS:
            raise ValueError(f"too many descriptors in one frame: {len(fds)}")
        data = _HEADER.pack(len(payload)) + payload
        anc = []
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        sent = self.sock.sendmsg([data], anc)
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def recv(self) -> tuple[bytes, list[int]]:
        """Receives one frame.

        Returns:
            The payload and the descriptors that came with it.

        Raises:
            ConnectionClosed: the peer closed the connection before a frame.
            OSError: the connection broke inside a frame, or the frame is
                malformed (EPROTO).
        """
        fds: list[int] = []
        header = bytearray()
        try:
            while len(header) < _HEADER.size:
                data, anc, flags, _ = self.sock.recvmsg(
                    _HEADER.size - len(header),
                    socket.CMSG_SPACE(MAX_FDS * 4),
                    socket.MSG_CMSG_CLOEXEC,
                )
                fds += _fds_from(anc)
                if flags & socket.MSG_CTRUNC:
                    raise OSError(errno.EPROTO, "descriptors were truncated")
                if not data:
                    if header:
                        raise OSError(errno.EPROTO, "connection closed inside a frame")
                    raise ConnectionClosed()
                header += data
            (length,) = _HEADER.unpack(header)
            if length > MAX_FRAME:
                raise OSError(errno.EPROTO, f"frame of {length} bytes is too large")
            payload = self._recv_exactly(length)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return payload, fds

    def _recv_exactly(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise OSError(errno.EPROTO, "connection closed inside a frame")
            got += k
        return bytes(buf)


def _fds_from(anc: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds += arr.tolist()
    return fds


@contextlib.contextmanager
def _short_path(path: str):
    """Yields a path no longer than sun_path allows that names `path`."""
    if len(os.fsencode(path)) <= _MAX_SUN_PATH:
        yield path
        return
    dirname, base = os.path.split(path)
    dirfd = os.open(dirname or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        short = f"/proc/self/fd/{dirfd}/{base}"
        if len(os.fsencode(short)) > _MAX_SUN_PATH:
            raise OSError(errno.ENAMETOOLONG, f"socket name too long: {base}")
        yield short
    finally:
        os.close(dirfd)


def listen(path: str, backlog: int = 16) -> socket.socket:
    """Returns a stream socket listening at path (removed first if stale)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with _short_path(path) as p:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
            sock.bind(p)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def connect(path: str, timeout: float | None = None) -> Conn:
    """Connects to the stream socket at path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        with _short_path(path) as p:
            sock.connect(p)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return Conn(sock)


def socketpair() -> tuple[Conn, Conn]:
    """Returns two connected Conns."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Conn(a), Conn(b)
