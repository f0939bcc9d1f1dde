"""Host socket system calls with raw sockaddrs, for hostinet.

Python's socket module speaks in address tuples; hostinet needs the calls
as Linux has them: an application's sockaddr goes to the host unchanged
(so the host kernel, not a conversion here, decides what is valid, and
AF_UNSPEC disconnects work), and what the host returns (accept's and
recvmsg's peer, getsockname) goes back byte for byte. Each wrapper makes
one libc call, which ctypes makes without the GIL, and raises OSError with
the host's errno on failure, as the os module does. The descriptors are
non-blocking: none of these calls waits.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# sizeof(struct sockaddr_storage).
SOCKADDR_MAX = 128

# Room for the control messages of one received message: every one
# hostinet passes on (timestamps, packet information, an extended error
# with its offender) fits several times over.
CONTROL_ROOM = 1024


class _IOVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IOVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


_CMSG_HDR = ctypes.sizeof(ctypes.c_size_t) + 8
_CMSG_ALIGN = ctypes.sizeof(ctypes.c_size_t)


def _fn(name: str, restype: type, *argtypes: type) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    f = getattr(_libc, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_P = ctypes.c_void_p
_I = ctypes.c_int
_U = ctypes.c_uint32
_socket = _fn("socket", _I, _I, _I, _I)
_bind = _fn("bind", _I, _I, _P, _U)
_connect = _fn("connect", _I, _I, _P, _U)
_listen = _fn("listen", _I, _I, _I)
_accept4 = _fn("accept4", _I, _I, _P, _P, _I)
_getsockname = _fn("getsockname", _I, _I, _P, _P)
_getpeername = _fn("getpeername", _I, _I, _P, _P)
_shutdown = _fn("shutdown", _I, _I, _I)
_getsockopt = _fn("getsockopt", _I, _I, _I, _I, _P, _P)
_setsockopt = _fn("setsockopt", _I, _I, _I, _I, _P, _U)
_sendmsg = _fn("sendmsg", ctypes.c_ssize_t, _I, _P, _I)
_recvmsg = _fn("recvmsg", ctypes.c_ssize_t, _I, _P, _I)
_ioctl = _fn("ioctl", _I, _I, ctypes.c_ulong, _P)


def _check(ret: int) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def _buf(data: bytes) -> ctypes.Array[ctypes.c_char]:
    # A zero-length buffer still has an address, which the host may take
    # for an empty sockaddr or option.
    return ctypes.create_string_buffer(data, max(len(data), 1))


def socket(family: int, stype: int, protocol: int) -> int:
    """socket(2); returns the new host descriptor."""
    return _check(_socket(family, stype, protocol))


def bind(fd: int, addr: bytes) -> None:
    """bind(2) with a raw sockaddr."""
    b = _buf(addr)
    _check(_bind(fd, ctypes.addressof(b), len(addr)))


def connect(fd: int, addr: bytes) -> None:
    """connect(2) with a raw sockaddr (AF_UNSPEC disconnects)."""
    b = _buf(addr)
    _check(_connect(fd, ctypes.addressof(b), len(addr)))


def listen(fd: int, backlog: int) -> None:
    """listen(2)."""
    _check(_listen(fd, backlog))


def _name_call(f: ctypes._CFuncPtr, fd: int) -> bytes:  # type: ignore[name-defined]
    b = ctypes.create_string_buffer(SOCKADDR_MAX)
    n = ctypes.c_uint32(SOCKADDR_MAX)
    _check(f(fd, ctypes.addressof(b), ctypes.addressof(n)))
    return b.raw[: min(n.value, SOCKADDR_MAX)]


def accept4(fd: int, flags: int) -> tuple[int, bytes]:
    """accept4(2); returns the new descriptor and the peer's sockaddr."""
    b = ctypes.create_string_buffer(SOCKADDR_MAX)
    n = ctypes.c_uint32(SOCKADDR_MAX)
    nfd = _check(_accept4(fd, ctypes.addressof(b), ctypes.addressof(n), flags))
    return nfd, b.raw[: min(n.value, SOCKADDR_MAX)]


def getsockname(fd: int) -> bytes:
    """getsockname(2)."""
    return _name_call(_getsockname, fd)


def getpeername(fd: int) -> bytes:
    """getpeername(2)."""
    return _name_call(_getpeername, fd)


def shutdown(fd: int, how: int) -> None:
    """shutdown(2)."""
    _check(_shutdown(fd, how))


def getsockopt(fd: int, level: int, name: int, size: int) -> bytes:
    """getsockopt(2) into a buffer of size bytes; returns what the host
    wrote."""
    b = ctypes.create_string_buffer(max(size, 1))
    n = ctypes.c_uint32(size)
    _check(_getsockopt(fd, level, name, ctypes.addressof(b), ctypes.addressof(n)))
    return b.raw[: min(n.value, size)]


def setsockopt(fd: int, level: int, name: int, value: bytes) -> None:
    """setsockopt(2)."""
    b = _buf(value)
    _check(_setsockopt(fd, level, name, ctypes.addressof(b), len(value)))


def sendmsg(
    fd: int,
    data: bytes | bytearray | memoryview,
    to: bytes | None,
    cmsgs: list[tuple[int, int, bytes]],
    flags: int,
) -> int:
    """sendmsg(2) of one buffer, to a raw sockaddr if given, with control
    messages as (level, type, data); returns the bytes sent."""
    if not isinstance(data, bytes):
        data = bytes(data)
    # The host reads the bytes object's own buffer: no copy, and the
    # c_char_p keeps it alive for the call.
    payload = ctypes.c_char_p(data)
    iov = _IOVec(ctypes.cast(payload, ctypes.c_void_p).value, len(data))
    msg = _MsgHdr()
    msg.iov = ctypes.pointer(iov)
    msg.iovlen = 1
    name = None
    if to is not None:
        name = _buf(to)
        msg.name = ctypes.addressof(name)
        msg.namelen = len(to)
    control = None
    if cmsgs:
        raw = build_cmsgs(cmsgs)
        control = _buf(raw)
        msg.control = ctypes.addressof(control)
        msg.controllen = len(raw)
    return _check(_sendmsg(fd, ctypes.addressof(msg), flags))


def build_cmsgs(cmsgs: list[tuple[int, int, bytes]]) -> bytes:
    """Lays out control messages as the host's sendmsg takes them."""
    out = b""
    for level, ctype, data in cmsgs:
        length = _CMSG_HDR + len(data)
        msg = (
            length.to_bytes(8, "little")
            + level.to_bytes(4, "little", signed=True)
            + ctype.to_bytes(4, "little", signed=True)
            + data
        )
        out += msg.ljust((length + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1), b"\0")
    return out


def recvmsg(
    fd: int, length: int, flags: int
) -> tuple[bytes, int, int, bytes | None, list[tuple[int, int, bytes]]]:
    """recvmsg(2) into a buffer of length bytes.

    Returns:
        (data, return value, msg_flags, sender's sockaddr or None, control
        messages as (level, type, data)). The return value exceeds
        len(data) for a truncated datagram received with MSG_TRUNC.
    """
    payload = ctypes.create_string_buffer(max(length, 1))
    name = ctypes.create_string_buffer(SOCKADDR_MAX)
    control = ctypes.create_string_buffer(CONTROL_ROOM)
    iov = _IOVec(ctypes.addressof(payload), length)
    msg = _MsgHdr()
    msg.name = ctypes.addressof(name)
    msg.namelen = SOCKADDR_MAX
    msg.iov = ctypes.pointer(iov)
    msg.iovlen = 1
    msg.control = ctypes.addressof(control)
    msg.controllen = CONTROL_ROOM
    n = _check(_recvmsg(fd, ctypes.addressof(msg), flags))
    addr = name.raw[: min(msg.namelen, SOCKADDR_MAX)] if msg.namelen else None
    cmsgs = parse_cmsgs(control.raw[: min(msg.controllen, CONTROL_ROOM)])
    return ctypes.string_at(payload, min(n, length)), n, msg.flags, addr, cmsgs


def parse_cmsgs(raw: bytes) -> list[tuple[int, int, bytes]]:
    """Splits a host control buffer into (level, type, data) messages."""
    out = []
    pos = 0
    while pos + _CMSG_HDR <= len(raw):
        length = int.from_bytes(raw[pos : pos + 8], "little")
        level = int.from_bytes(raw[pos + 8 : pos + 12], "little", signed=True)
        ctype = int.from_bytes(raw[pos + 12 : pos + 16], "little", signed=True)
        if length < _CMSG_HDR or pos + length > len(raw):
            break
        out.append((level, ctype, raw[pos + _CMSG_HDR : pos + length]))
        pos += (length + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1)
    return out


def ioctl(fd: int, cmd: int, arg: bytes) -> bytes:
    """ioctl(2) with a buffer argument; returns the buffer afterwards."""
    b = _buf(arg)
    _check(_ioctl(fd, cmd, ctypes.addressof(b)))
    return b.raw[: len(arg)]


def ioctl_ifconf(fd: int, length: int, cmd: int) -> bytes:
    """SIOCGIFCONF into a host buffer of length bytes (none for 0);
    returns the entries, or with length 0 only the length they need as a
    4-byte int."""
    if length == 0:
        conf = ctypes.create_string_buffer(16)
        _check(_ioctl(fd, cmd, ctypes.addressof(conf)))
        return conf.raw[:4]
    entries = ctypes.create_string_buffer(length)
    conf = ctypes.create_string_buffer(
        length.to_bytes(4, "little", signed=True)
        + bytes(4)
        + ctypes.addressof(entries).to_bytes(8, "little"),
        16,
    )
    _check(_ioctl(fd, cmd, ctypes.addressof(conf)))
    used = int.from_bytes(conf.raw[:4], "little", signed=True)
    return entries.raw[: max(used, 0)]
