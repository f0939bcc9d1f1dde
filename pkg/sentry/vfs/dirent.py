"""Directory entries as getdents64(2) and getdents(2) return them."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

_DIRENT64 = struct.Struct("<QqHB")
_DIRENT = struct.Struct("<QQH")


@dataclass(frozen=True, slots=True)
class Dirent:
    """Dirent is one directory entry.

    Attributes:
        name: the entry's name.
        type: its DT_* type.
        ino: its inode number.
        next_off: the directory offset just after this entry (d_off).
    """

    name: bytes
    type: int
    ino: int
    next_off: int


# A callback that consumes one entry; returns False when it has no room,
# which ends the iteration without consuming the entry.
DirentCallback = Callable[[Dirent], bool]


def dirent64_size(name: bytes) -> int:
    """Returns the record length of a linux_dirent64 for name."""
    return (_DIRENT64.size + len(name) + 1 + 7) & ~7


def pack_dirent64(d: Dirent) -> bytes:
    """Returns d as a struct linux_dirent64."""
    size = dirent64_size(d.name)
    head = _DIRENT64.pack(d.ino, d.next_off, size, d.type)
    return head + d.name + bytes(size - len(head) - len(d.name))


def dirent_size(name: bytes) -> int:
    """Returns the record length of an old-style linux_dirent for name (the
    type byte follows the name's terminator)."""
    return (_DIRENT.size + len(name) + 2 + 7) & ~7


def pack_dirent(d: Dirent) -> bytes:
    """Returns d as a struct linux_dirent (getdents(2))."""
    size = dirent_size(d.name)
    head = _DIRENT.pack(d.ino, d.next_off & 0xFFFF_FFFF_FFFF_FFFF, size)
    body = head + d.name + bytes(size - len(head) - len(d.name) - 1)
    return body + bytes([d.type])
