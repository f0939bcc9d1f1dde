"""The sandbox's network interfaces: only "lo", as a network namespace of
`--network=none` has, and the interface ioctls (net/core/dev_ioctl.c)
that every socket answers.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import socket as SK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_NET_ADMIN

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

LOOPBACK_NAME = b"lo"
LOOPBACK_INDEX = 1
LOOPBACK_MTU = 65536
LOOPBACK_TXQLEN = 1000
# What SIOCGIFFLAGS reports (the low 16 bits of dev_get_flags) and what
# RTM_NEWLINK carries.
LOOPBACK_FLAGS = SK.IFF_UP | SK.IFF_LOOPBACK | SK.IFF_RUNNING
LOOPBACK_LINK_FLAGS = LOOPBACK_FLAGS | SK.IFF_LOWER_UP
LOOPBACK_V4 = bytes([127, 0, 0, 1])
LOOPBACK_V4_PREFIX = 8
LOOPBACK_V6 = bytes(15) + b"\x01"
LOOPBACK_V6_PREFIX = 128

_SHORT = struct.Struct("<h")
_INT = struct.Struct("<i")

_IOCTLS = frozenset(
    {
        SK.SIOCGIFNAME,
        SK.SIOCGIFCONF,
        SK.SIOCGIFFLAGS,
        SK.SIOCGIFADDR,
        SK.SIOCGIFNETMASK,
        SK.SIOCGIFMTU,
        SK.SIOCGIFHWADDR,
        SK.SIOCGIFINDEX,
        SK.SIOCGIFMETRIC,
        SK.SIOCGIFMAP,
        SK.SIOCGIFTXQLEN,
    }
)


# Requests that change an interface.
_SET_IOCTLS = frozenset(
    {
        SK.SIOCSIFFLAGS,
        SK.SIOCSIFADDR,
        SK.SIOCSIFNETMASK,
        SK.SIOCSIFMTU,
        SK.SIOCSIFNAME,
        SK.SIOCSIFHWADDR,
        SK.SIOCSIFTXQLEN,
    }
)


def is_interface_ioctl(cmd: int) -> bool:
    """Reports whether cmd is an interface ioctl handled here."""
    return cmd in _IOCTLS or cmd in _SET_IOCTLS


def _sockaddr_in(addr: bytes) -> bytes:
    return SK.SOCKADDR_IN.pack(SK.AF_INET, b"\0\0", addr)


def interface_ioctl(t: Task, cmd: int, arg: int) -> int:
    """Answers an interface ioctl about lo.

    Raises:
        SyscallError: EFAULT for a bad struct ifreq/ifconf, ENODEV for an
            interface other than lo.
    """
    if cmd == SK.SIOCGIFCONF:
        return _ifconf(t, arg)
    if cmd in _SET_IOCTLS:
        return _set(t, cmd, arg)
    req = bytearray(t.copy_in(arg, SK.IFREQ_SIZE))
    if cmd == SK.SIOCGIFNAME:
        if _INT.unpack_from(req, SK.IFNAMSIZ)[0] != LOOPBACK_INDEX:
            raise SyscallError(errno.ENODEV)
        req[: SK.IFNAMSIZ] = LOOPBACK_NAME.ljust(SK.IFNAMSIZ, b"\0")
        t.copy_out(arg, bytes(req))
        return 0
    name = bytes(req[: SK.IFNAMSIZ]).split(b"\0", 1)[0]
    if name != LOOPBACK_NAME:
        raise SyscallError(errno.ENODEV)
    if cmd == SK.SIOCGIFFLAGS:
        value = _SHORT.pack(LOOPBACK_FLAGS)
    elif cmd == SK.SIOCGIFINDEX:
        value = _INT.pack(LOOPBACK_INDEX)
    elif cmd == SK.SIOCGIFMTU:
        value = _INT.pack(LOOPBACK_MTU)
    elif cmd == SK.SIOCGIFTXQLEN:
        value = _INT.pack(LOOPBACK_TXQLEN)
    elif cmd == SK.SIOCGIFMETRIC:
        value = _INT.pack(0)
    elif cmd == SK.SIOCGIFMAP:
        # struct ifmap: no memory window, interrupt, DMA or port.
        value = bytes(24)
    elif cmd == SK.SIOCGIFADDR:
        value = _sockaddr_in(LOOPBACK_V4)
    elif cmd == SK.SIOCGIFNETMASK:
        value = _sockaddr_in(bytes([255, 0, 0, 0]))
    else:
        assert cmd == SK.SIOCGIFHWADDR
        value = struct.pack("<H14x", SK.ARPHRD_LOOPBACK)
    t.copy_out(arg + SK.IFNAMSIZ, value)
    return 0


def _ifconf(t: Task, arg: int) -> int:
    """SIOCGIFCONF: one struct ifreq per interface with an IPv4 address;
    with a null buffer, only the length needed (dev_ifconf)."""
    length, buf = SK.IFCONF.unpack(t.copy_in(arg, SK.IFCONF.size))
    entry = LOOPBACK_NAME.ljust(SK.IFNAMSIZ, b"\0") + _sockaddr_in(LOOPBACK_V4)
    entry = entry.ljust(SK.IFREQ_SIZE, b"\0")
    if buf == 0:
        used = len(entry)
    else:
        used = 0
        if length >= len(entry):
            t.copy_out(buf, entry)
            used = len(entry)
    t.copy_out(arg, _INT.pack(used))
    return 0


def _set(t: Task, cmd: int, arg: int) -> int:
    """Answers a request to change lo: EPERM without CAP_NET_ADMIN; 0 for
    SIOCSIFFLAGS that leaves lo as it is (up); EOPNOTSUPP for real changes,
    which are not modelled (TODO(#5))."""
    req = t.copy_in(arg, SK.IFREQ_SIZE)
    name = req[: SK.IFNAMSIZ].split(b"\0", 1)[0]
    if name != LOOPBACK_NAME:
        raise SyscallError(errno.ENODEV)
    if not t.creds.has_capability(CAP_NET_ADMIN):
        raise SyscallError(errno.EPERM)
    if cmd == SK.SIOCSIFFLAGS:
        flags = _SHORT.unpack_from(req, SK.IFNAMSIZ)[0] & 0xFFFF
        if flags | SK.IFF_RUNNING == LOOPBACK_FLAGS | SK.IFF_RUNNING:
            return 0
    raise SyscallError(errno.EOPNOTSUPP)
