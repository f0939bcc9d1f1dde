"""--strace decoders for the readiness calls: pollfd arrays, fd_sets,
struct timeval, epoll_ctl operations and struct epoll_event."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import epoll as EP
from pkg.abi.linux import poll as P
from pkg.sentry.strace import formats as K

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Entries shown at most per array.
_MAX_SHOWN = 16
_POLLFD = struct.Struct("<ihh")
_EPOLL_EVENT = struct.Struct("<IQ")
_TIMEVAL = struct.Struct("<qq")

_POLL_NAMES = [
    (v, n)
    for n, v in vars(P).items()
    if n.startswith("POLL") and isinstance(v, int) and v & (v - 1) == 0
]
_EPOLL_NAMES = [
    (v, n)
    for n, v in vars(EP).items()
    if n.startswith("EPOLL")
    and not n.startswith("EPOLL_")
    and isinstance(v, int)
    and v & (v - 1) == 0
]
_CTL_OPS = {
    EP.EPOLL_CTL_ADD: "EPOLL_CTL_ADD",
    EP.EPOLL_CTL_DEL: "EPOLL_CTL_DEL",
    EP.EPOLL_CTL_MOD: "EPOLL_CTL_MOD",
}


def _flags(value: int, names: list[tuple[int, str]]) -> str:
    parts = [n for bit, n in names if value & bit]
    rest = value
    for bit, _n in names:
        rest &= ~bit
    if rest or not parts:
        parts.append(hex(rest))
    return "|".join(parts)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _pollfds(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr, count = args[i], args[i + 1] & 0xFFFFFFFF
    shown = min(count, _MAX_SHOWN)
    raw = t.mm.copy_in(addr, shown * _POLLFD.size) if shown else b""
    parts = []
    for j in range(shown):
        fd, events, revents = _POLLFD.unpack_from(raw, j * _POLLFD.size)
        text = f"{{fd={fd} events={_flags(events & 0xFFFF, _POLL_NAMES)}"
        if ret is not None and ret >= 0 and revents:
            text += f" revents={_flags(revents & 0xFFFF, _POLL_NAMES)}"
        parts.append(text + "}")
    more = ", ..." if count > shown else ""
    return f"{addr:#x} [{', '.join(parts)}{more}]"


def _fd_set(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr = args[i]
    if addr == 0:
        return "null"
    if ret is not None and ret < 0:
        return hex(addr)
    n = max(0, min(_s32(args[0]), 1024))
    raw = t.mm.copy_in(addr, (n + 63) // 64 * 8) if n else b""
    bits = int.from_bytes(raw, "little") & ((1 << n) - 1)
    fds = [str(fd) for fd in range(n) if bits >> fd & 1]
    return f"{addr:#x} [{' '.join(fds)}]"


def _timeval(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr = args[i]
    if addr == 0:
        return "null"
    sec, usec = _TIMEVAL.unpack(t.mm.copy_in(addr, _TIMEVAL.size))
    return f"{addr:#x} {{sec={sec} usec={usec}}}"


def _ctl_op(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    op = _s32(args[i])
    return _CTL_OPS.get(op, str(op))


def _event(events: int, data: int) -> str:
    return f"{{events={_flags(events, _EPOLL_NAMES)} data={data:#x}}}"


def _epoll_event(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr = args[i]
    if addr == 0:
        return "null"
    events, data = _EPOLL_EVENT.unpack(t.mm.copy_in(addr, _EPOLL_EVENT.size))
    return f"{addr:#x} {_event(events, data)}"


def _epoll_events_out(t: Task, args: tuple[int, ...], i: int, ret: int | None) -> str:
    addr = args[i]
    if ret is None or ret <= 0:
        return hex(addr)
    shown = min(ret, _MAX_SHOWN)
    raw = t.mm.copy_in(addr, shown * _EPOLL_EVENT.size)
    parts = [
        _event(*_EPOLL_EVENT.unpack_from(raw, j * _EPOLL_EVENT.size))
        for j in range(shown)
    ]
    more = ", ..." if ret > shown else ""
    return f"{addr:#x} [{', '.join(parts)}{more}]"


# kind: decoder(task, args, index, return value or None at entry).
DECODERS: dict[str, Callable[[Task, tuple[int, ...], int, int | None], str]] = {
    K.POLLFDS: _pollfds,
    K.FD_SET: _fd_set,
    K.TIMEVAL: _timeval,
    K.EPOLL_CTL_OP: _ctl_op,
    K.EPOLL_EVENT: _epoll_event,
    K.EPOLL_EVENTS_OUT: _epoll_events_out,
}
