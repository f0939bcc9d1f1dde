"""Framing of gofer messages on a Unix stream socket.

A frame is a 4-byte little-endian payload length followed by the payload (a
serialized protobuf message). Host descriptors travel as SCM_RIGHTS on the
first bytes of the frame: Linux hands ancillary data to the recvmsg call that
reads the first byte of the segment it came with, and never merges segments
carrying descriptors into one read, so the receiver collects them with the
header. Both sides are synchronous (one frame in flight per direction), which
is what makes that sound.
"""

from __future__ import annotations

import array
import os
import socket
import struct

# Largest payload either side sends or accepts.
MAX_MESSAGE_SIZE = 16 << 20

# Most descriptors one frame may carry.
MAX_FDS = 16

_HEADER = struct.Struct("<I")


class ProtocolError(Exception):
    """ProtocolError is a malformed frame or a peer that hung up mid-frame.

    The connection cannot be used after one.
    """


def send_frame(sock: socket.socket, payload: bytes, fds: list[int] = ()) -> None:
    """Sends one frame with descriptors attached.

    Args:
        sock: a connected Unix stream socket.
        payload: the serialized message.
        fds: host descriptors to pass; the caller keeps its own copies.

    Raises:
        ProtocolError: payload or fds exceed the limits.
        OSError: the peer is gone.
    """
    if len(payload) > MAX_MESSAGE_SIZE:
        raise ProtocolError(f"gofer: frame of {len(payload)} bytes is too large")
    if len(fds) > MAX_FDS:
        raise ProtocolError(f"gofer: {len(fds)} descriptors in one frame")
    data = _HEADER.pack(len(payload)) + payload
    anc = []
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    sent = sock.sendmsg([data], anc)
    view = memoryview(data)
    while sent < len(data):
        sent += sock.send(view[sent:])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ProtocolError("gofer: peer closed the connection mid-frame")
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """Receives one frame.

    Returns:
        (payload, descriptors), or None when the peer closed the connection
        between frames. The caller owns the descriptors.

    Raises:
        ProtocolError: a malformed or truncated frame; descriptors that came
            with it are closed.
    """
    fds: list[int] = []
    anc_size = socket.CMSG_SPACE(MAX_FDS * 4)
    header = b""
    try:
        while len(header) < _HEADER.size:
            data, anc, flags, _ = sock.recvmsg(
                _HEADER.size - len(header), anc_size, socket.MSG_CMSG_CLOEXEC
            )
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(blob[: len(blob) - len(blob) % a.itemsize])
                    fds.extend(a)
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("gofer: descriptors truncated")
            if not data:
                if header or fds:
                    raise ProtocolError("gofer: peer closed the connection mid-frame")
                return None
            header += data
        (length,) = _HEADER.unpack(header)
        if length > MAX_MESSAGE_SIZE:
            raise ProtocolError(f"gofer: frame of {length} bytes is too large")
        return _recv_exact(sock, length), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
