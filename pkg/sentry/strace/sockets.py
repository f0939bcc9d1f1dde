"""--strace decoders for the socket calls: address families, socket types
and struct sockaddr (unix, inet, inet6, netlink)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import socket as SK
from pkg.sentry.strace import formats as K

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_FAMILIES = {
    SK.AF_UNSPEC: "AF_UNSPEC",
    SK.AF_UNIX: "AF_UNIX",
    SK.AF_INET: "AF_INET",
    SK.AF_INET6: "AF_INET6",
    SK.AF_NETLINK: "AF_NETLINK",
    SK.AF_PACKET: "AF_PACKET",
}
_TYPES = {
    SK.SOCK_STREAM: "SOCK_STREAM",
    SK.SOCK_DGRAM: "SOCK_DGRAM",
    SK.SOCK_RAW: "SOCK_RAW",
    SK.SOCK_RDM: "SOCK_RDM",
    SK.SOCK_SEQPACKET: "SOCK_SEQPACKET",
}
# Addresses longer than this are shown cut.
_MAX_ADDR = 128


def _family(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    v = args[i] & 0xFFFFFFFF
    return _FAMILIES.get(v, str(v))


def _type(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    v = args[i] & 0xFFFFFFFF
    parts = [_TYPES.get(v & SK.SOCK_TYPE_MASK, str(v & SK.SOCK_TYPE_MASK))]
    if v & SK.SOCK_NONBLOCK:
        parts.append("SOCK_NONBLOCK")
    if v & SK.SOCK_CLOEXEC:
        parts.append("SOCK_CLOEXEC")
    return "|".join(parts)


def format_sockaddr(raw: bytes) -> str:
    """Returns a readable form of a struct sockaddr."""
    if len(raw) < 2:
        return "{}"
    fam = struct.unpack_from("<H", raw)[0]
    name = _FAMILIES.get(fam, str(fam))
    if fam == SK.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":
            return f'{{{name}, "@{path[1:].decode(errors="backslashreplace")}"}}'
        path = path.split(b"\0", 1)[0]
        return f'{{{name}, "{path.decode(errors="backslashreplace")}"}}'
    if fam == SK.AF_INET and len(raw) >= 8:
        port = int.from_bytes(raw[2:4], "big")
        return f"{{{name}, {ipaddress.IPv4Address(raw[4:8])}:{port}}}"
    if fam == SK.AF_INET6 and len(raw) >= 24:
        port = int.from_bytes(raw[2:4], "big")
        return f"{{{name}, [{ipaddress.IPv6Address(raw[8:24])}]:{port}}}"
    if fam == SK.AF_NETLINK and len(raw) >= SK.SOCKADDR_NL.size:
        _f, _p, pid, groups = SK.SOCKADDR_NL.unpack_from(raw)
        return f"{{{name}, pid={pid}, groups={groups:#x}}}"
    return f"{{{name}, ...}}"


def _sockaddr(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr, length = args[i], args[i + 1] & 0xFFFFFFFF
    if addr == 0 or length == 0:
        return hex(addr)
    raw = t.mm.copy_in_partial(addr, min(length, _MAX_ADDR))
    return f"{addr:#x} {format_sockaddr(raw)}"


def _sockaddr_out(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr, len_addr = args[i], args[i + 1]
    if addr == 0 or len_addr == 0 or ret is None or ret < 0:
        return hex(addr)
    length = int.from_bytes(t.mm.copy_in_partial(len_addr, 4), "little")
    raw = t.mm.copy_in_partial(addr, min(length, _MAX_ADDR))
    return f"{addr:#x} {format_sockaddr(raw)}"


DECODERS: dict[str, Callable[[Task, tuple[int, ...], int, int | None], str]] = {
    K.SOCK_FAMILY: _family,
    K.SOCK_TYPE: _type,
    K.SOCKADDR: _sockaddr,
    K.SOCKADDR_OUT: _sockaddr_out,
}
