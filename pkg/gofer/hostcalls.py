"""Host system calls the gofer needs that Python's os module lacks.

The gofer works on O_PATH descriptors with empty paths (AT_EMPTY_PATH) and
on flags that os does not expose (renameat2, getdents64 cookies, statfs's
f_type). These are thin ctypes wrappers; each raises OSError with the host
errno, as os functions do.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# x86-64 system call numbers.
_SYS_GETDENTS64 = 217
_SYS_RENAMEAT2 = 316

AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

_linux_dirent64 = struct.Struct("<QqHB")


def _check(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


_libc.fchownat.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
    ctypes.c_uint,
    ctypes.c_int,
]


def fchown_empty(fd: int, uid: int, gid: int) -> None:
    """Changes the owner of the file fd refers to, which may be O_PATH.

    uid or gid of 0xFFFFFFFF leaves that id unchanged, as chown(2) does.
    """
    _check(
        _libc.fchownat(fd, b"", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW),
        "fchownat",
    )


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.utimensat.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.POINTER(_Timespec),
    ctypes.c_int,
]


def utimens_empty(fd: int, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """Sets the times of the file fd refers to, which may be O_PATH.

    Each time is (seconds, nanoseconds); nanoseconds may be UTIME_NOW or
    UTIME_OMIT.
    """
    times = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    _check(
        _libc.utimensat(fd, b"", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW),
        "utimensat",
    )


def renameat2(
    old_dir: int, old_name: bytes, new_dir: int, new_name: bytes, flags: int
) -> None:
    """renameat2(2)."""
    _check(
        _syscall(
            _SYS_RENAMEAT2,
            ctypes.c_int(old_dir),
            ctypes.c_char_p(old_name),
            ctypes.c_int(new_dir),
            ctypes.c_char_p(new_name),
            ctypes.c_uint(flags),
        ),
        "renameat2",
    )


_libc.linkat.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
]


def link_empty(fd: int, new_dir: int, new_name: bytes) -> None:
    """Links the file fd refers to (may be O_PATH) at new_dir/new_name.

    Needs CAP_DAC_READ_SEARCH, as linkat(2) with AT_EMPTY_PATH does.
    """
    _check(_libc.linkat(fd, b"", new_dir, new_name, AT_EMPTY_PATH), "linkat")


def getdents64(fd: int, size: int) -> list[tuple[int, int, int, bytes]]:
    """Reads entries from directory fd at its current offset.

    Returns:
        (ino, next_offset, d_type, name) per entry; empty at the end.
    """
    buf = ctypes.create_string_buffer(size)
    n = _check(
        _syscall(_SYS_GETDENTS64, ctypes.c_int(fd), buf, ctypes.c_uint(size)),
        "getdents64",
    )
    raw = buf.raw[:n]
    out = []
    pos = 0
    while pos < n:
        ino, off, reclen, dtype = _linux_dirent64.unpack_from(raw, pos)
        name = raw[pos + _linux_dirent64.size : pos + reclen]
        out.append((ino, off, dtype, name.split(b"\0", 1)[0]))
        pos += reclen
    return out


class _Statfs(ctypes.Structure):
    _fields_ = [
        ("f_type", ctypes.c_long),
        ("f_bsize", ctypes.c_long),
        ("f_blocks", ctypes.c_ulong),
        ("f_bfree", ctypes.c_ulong),
        ("f_bavail", ctypes.c_ulong),
        ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong),
        ("f_fsid", ctypes.c_int * 2),
        ("f_namelen", ctypes.c_long),
        ("f_frsize", ctypes.c_long),
        ("f_flags", ctypes.c_long),
        ("f_spare", ctypes.c_long * 4),
    ]


_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.POINTER(_Statfs)]


def fstatfs(fd: int) -> _Statfs:
    """fstatfs(2); fd may be O_PATH."""
    st = _Statfs()
    _check(_libc.fstatfs(fd, ctypes.byref(st)), "fstatfs")
    return st


_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) with its mode (FALLOC_FL_*)."""
    _check(_libc.fallocate(fd, mode, offset, length), "fallocate")
