"""Reading directories: getdents(2), getdents64(2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32, u32
from pkg.sentry.vfs.dirent import (
    Dirent,
    dirent64_size,
    dirent_size,
    pack_dirent,
    pack_dirent64,
)
from pkg.sentry.vfs.task_path import get_file

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription


def _getdents(
    t: Task,
    args: Args,
    size_of: Callable[[bytes], int],
    pack: Callable[[Dirent], bytes],
) -> int:
    fd, addr, count = s32(args[0]), args[1], u32(args[2])
    f = get_file(t, fd)
    if count and (addr + count > t.mm.max_address or addr + count < addr):
        raise SyscallError(errno.EFAULT)
    out: list[bytes] = []
    used = 0

    def take(d: Dirent) -> bool:
        nonlocal used
        n = size_of(d.name)
        if used + n > count:
            return False
        out.append(pack(d))
        used += n
        return True

    f.iterate_dirents(t, take)
    if not out:
        # Nothing fitted: the buffer is too small for the next entry, or the
        # directory has ended.
        if _has_more(t, f):
            raise SyscallError(errno.EINVAL)
        return 0
    t.copy_out(addr, b"".join(out))
    return used


def _has_more(t: Task, f: FileDescription) -> bool:
    """Reports whether the directory has an entry at its offset, without
    consuming it."""
    probe: list[Dirent] = []

    def peek(d: Dirent) -> bool:
        probe.append(d)
        return False

    f.iterate_dirents(t, peek)
    return bool(probe)


def sys_getdents(t: Task, args: Args) -> int:
    """getdents(2): struct linux_dirent, the type in the last byte."""
    return _getdents(t, args, dirent_size, pack_dirent)


def sys_getdents64(t: Task, args: Args) -> int:
    """getdents64(2)."""
    return _getdents(t, args, dirent64_size, pack_dirent64)


ENTRIES = [
    full(N.SYS_getdents, "getdents", sys_getdents),
    full(N.SYS_getdents64, "getdents64", sys_getdents64),
]
