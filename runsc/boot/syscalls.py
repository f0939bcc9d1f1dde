"""Host system calls that Python 3.11's os module lacks, through ctypes.

runsc needs a few calls the standard library does not wrap: namespaces
(unshare, setns), mounts (mount, umount2, pivot_root), capabilities (capget,
capset), seccomp, openat2 and a few prctl options. Each wrapper makes the raw
system call and raises OSError with the call's errno on failure, as the os
module does.
"""

from __future__ import annotations

import ctypes
import os
import struct

from pkg.abi.linux import capability as C
from pkg.abi.linux import sysno as N

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long]

# openat2(2) resolve flags (include/uapi/linux/openat2.h).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_OPEN_HOW = struct.Struct("<QQQ")


def _check(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def _cstr(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s.encode() if isinstance(s, str) else s


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_syscall(N.SYS_unshare, ctypes.c_ulong(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    """setns(2)."""
    _check(_syscall(N.SYS_setns, ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    """mount(2)."""
    _check(
        _syscall(
            N.SYS_mount,
            ctypes.c_char_p(_cstr(source)),
            ctypes.c_char_p(_cstr(target)),
            ctypes.c_char_p(_cstr(fstype)),
            ctypes.c_ulong(flags),
            ctypes.c_char_p(_cstr(data)),
        ),
        f"mount {target}",
    )


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check(
        _syscall(N.SYS_umount2, ctypes.c_char_p(_cstr(target)), ctypes.c_int(flags)),
        f"umount {target}",
    )


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    _check(
        _syscall(
            N.SYS_pivot_root,
            ctypes.c_char_p(_cstr(new_root)),
            ctypes.c_char_p(_cstr(put_old)),
        ),
        "pivot_root",
    )


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0) -> int:
    """prctl(2) with integer arguments."""
    return _check(
        _syscall(
            N.SYS_prctl,
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(0),
        ),
        f"prctl({option})",
    )


def set_name(name: str) -> None:
    """Sets the calling thread's name (comm), as ps shows it."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(
        _syscall(N.SYS_prctl, ctypes.c_int(15), buf, ctypes.c_ulong(0)),
        "prctl(PR_SET_NAME)",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def capget() -> tuple[int, int, int]:
    """Returns the calling thread's (effective, permitted, inheritable)."""
    hdr = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_syscall(N.SYS_capget, ctypes.byref(hdr), data), "capget")
    return tuple(  # type: ignore[return-value]
        getattr(data[0], f) | getattr(data[1], f) << 32
        for f in ("effective", "permitted", "inheritable")
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Sets the calling thread's capability sets (capset(2))."""
    hdr = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = effective >> (32 * i) & 0xFFFFFFFF
        data[i].permitted = permitted >> (32 * i) & 0xFFFFFFFF
        data[i].inheritable = inheritable >> (32 * i) & 0xFFFFFFFF
    _check(_syscall(N.SYS_capset, ctypes.byref(hdr), data), "capset")


def seccomp(operation: int, flags: int, prog: bytes) -> int:
    """Installs a classic BPF program of packed struct sock_filter
    entries with seccomp(2)."""
    n = len(prog) // 8
    buf = ctypes.create_string_buffer(prog, len(prog))

    class _Fprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    fprog = _Fprog(n, ctypes.addressof(buf))
    return _check(
        _syscall(
            N.SYS_seccomp,
            ctypes.c_uint(operation),
            ctypes.c_uint(flags),
            ctypes.byref(fprog),
        ),
        "seccomp",
    )


def openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    """openat2(2); returns the new descriptor."""
    how = ctypes.create_string_buffer(_OPEN_HOW.pack(flags, mode, resolve))
    return _check(
        _syscall(
            N.SYS_openat2,
            ctypes.c_int(dirfd),
            ctypes.c_char_p(_cstr(path)),
            how,
            ctypes.c_size_t(_OPEN_HOW.size),
        ),
        f"openat2 {path}",
    )


def pidfd_open(pid: int) -> int:
    """pidfd_open(2); returns a pidfd."""
    return _check(
        _syscall(N.SYS_pidfd_open, ctypes.c_int(pid), ctypes.c_uint(0)),
        "pidfd_open",
    )


def pidfd_send_signal(pidfd: int, signo: int) -> None:
    """pidfd_send_signal(2) with no siginfo."""
    _check(
        _syscall(
            N.SYS_pidfd_send_signal,
            ctypes.c_int(pidfd),
            ctypes.c_int(signo),
            ctypes.c_void_p(0),
            ctypes.c_uint(0),
        ),
        "pidfd_send_signal",
    )
