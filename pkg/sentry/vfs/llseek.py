"""lseek(2)'s arithmetic, shared by every file that keeps its own offset.

generic_llseek computes the new offset as generic_file_llseek_size in
fs/read_write.c does; each file says what its end is and how it finds data
and holes, and stores the result under its own lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError, from_os_error

# Offsets fit in a signed 64-bit loff_t.
MAX_OFFSET = (1 << 63) - 1


def generic_llseek(
    current: int,
    offset: int,
    whence: int,
    size: Callable[[], int] | None = None,
    data_or_hole: Callable[[int, int], int] | None = None,
    max_offset: int = MAX_OFFSET,
) -> int:
    """generic_llseek returns the offset lseek(2) moves a file to.

    Args:
        current: the file's offset now.
        offset: lseek's offset argument.
        whence: lseek's whence.
        size: returns the file's size, for SEEK_END; None if the file
            refuses SEEK_END (directories, seq files).
        data_or_hole: returns where SEEK_DATA or SEEK_HOLE (its second
            argument) from an offset leads; None if the file refuses both.
        max_offset: the largest offset the file allows.

    Returns:
        The new offset.

    Raises:
        SyscallError: EINVAL for a whence the file refuses or a result
            outside [0, max_offset]; what data_or_hole raises (ENXIO).
    """
    if whence == F.SEEK_SET:
        new = offset
    elif whence == F.SEEK_CUR:
        new = current + offset
    elif whence == F.SEEK_END and size is not None:
        new = size() + offset
    elif whence in (F.SEEK_DATA, F.SEEK_HOLE) and data_or_hole is not None:
        new = data_or_hole(offset, whence)
    else:
        raise SyscallError(errno.EINVAL)
    if new < 0 or new > max_offset:
        raise SyscallError(errno.EINVAL)
    return new


def host_data_or_hole(host_fd: int) -> Callable[[int, int], int]:
    """host_data_or_hole returns a data_or_hole for generic_llseek that asks
    the host file behind host_fd (which lseek moves: callers keep their
    offset apart from it)."""

    def seek(offset: int, whence: int) -> int:
        # As generic_file_llseek_size compares offsets unsigned: a negative
        # one is past every end.
        if offset < 0:
            raise SyscallError(errno.ENXIO)
        try:
            return os.lseek(host_fd, offset, whence)
        except OSError as e:
            raise from_os_error(e) from None

    return seek
