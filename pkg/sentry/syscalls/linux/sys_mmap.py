"""mmap(2), munmap(2), mprotect(2) and brk(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import mman as M
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.memory_manager import MmapOpts
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_KNOWN_FLAGS = (
    M.MAP_TYPE
    | M.MAP_FIXED
    | M.MAP_ANONYMOUS
    | M.MAP_32BIT
    | M.MAP_GROWSDOWN
    | M.MAP_DENYWRITE
    | M.MAP_EXECUTABLE
    | M.MAP_LOCKED
    | M.MAP_NORESERVE
    | M.MAP_POPULATE
    | M.MAP_NONBLOCK
    | M.MAP_STACK
    | M.MAP_HUGETLB
    | M.MAP_SYNC
    | M.MAP_FIXED_NOREPLACE
    | M.MAP_UNINITIALIZED
)
_PROT_ALL = M.PROT_READ | M.PROT_WRITE | M.PROT_EXEC
# Where MAP_32BIT mappings go (arch/x86/kernel/sys_x86_64.c).
_MAP_32BIT_TOP = 0x80000000


def sys_mmap(t: Task, args: Args) -> int:
    """mmap(2)."""
    addr, length, prot, flags, fd, offset = args
    prot = s32(prot) & 0xFFFFFFFF
    flags &= 0xFFFFFFFF
    fd = s32(fd)
    map_type = flags & M.MAP_TYPE
    if map_type not in (M.MAP_PRIVATE, M.MAP_SHARED, M.MAP_SHARED_VALIDATE):
        raise SyscallError(errno.EINVAL)
    if map_type == M.MAP_SHARED_VALIDATE and flags & ~_KNOWN_FLAGS:
        raise SyscallError(errno.EOPNOTSUPP)
    if prot & ~(_PROT_ALL | M.PROT_SEM | M.PROT_GROWSDOWN | M.PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    if length == 0 or offset % M.PAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    if M.page_round_up(length) == 0 or length > t.mm.max_address:
        raise SyscallError(errno.ENOMEM)
    if flags & M.MAP_HUGETLB:
        # TODO(#3): no huge pages; Linux also fails without a hugetlb pool.
        raise SyscallError(errno.ENOMEM if flags & M.MAP_ANONYMOUS else errno.EINVAL)
    fixed = bool(flags & M.MAP_FIXED)
    noreplace = bool(flags & M.MAP_FIXED_NOREPLACE) and not fixed
    if (fixed or noreplace) and addr % M.PAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    if flags & M.MAP_ANONYMOUS and map_type == M.MAP_SHARED_VALIDATE:
        # do_mmap accepts only MAP_SHARED and MAP_PRIVATE without a file.
        raise SyscallError(errno.EINVAL)
    if not flags & M.MAP_ANONYMOUS:
        # TODO(#3): file-backed mappings arrive with the VFS and page cache.
        t.fd_table.get(fd)
        raise SyscallError(errno.ENODEV)
    hint = addr
    if flags & M.MAP_32BIT and not (fixed or noreplace):
        hint = hint or 0x40000000
    opts = MmapOpts(
        length=length,
        prot=prot & _PROT_ALL,
        addr=hint,
        fixed=fixed,
        noreplace=noreplace,
        private=map_type == M.MAP_PRIVATE,
        growsdown=bool(flags & M.MAP_GROWSDOWN),
    )
    result = t.mm.mmap(opts)
    if flags & M.MAP_32BIT and result + M.page_round_up(length) > _MAP_32BIT_TOP:
        t.mm.munmap(result, M.page_round_up(length))
        raise SyscallError(errno.ENOMEM)
    return result


def sys_munmap(t: Task, args: Args) -> int:
    """munmap(2)."""
    t.mm.munmap(args[0], args[1])
    return 0


def sys_mprotect(t: Task, args: Args) -> int:
    """mprotect(2)."""
    addr, length, prot = args[0], args[1], args[2] & 0xFFFFFFFF
    if prot & ~(_PROT_ALL | M.PROT_SEM | M.PROT_GROWSDOWN | M.PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    if prot & M.PROT_GROWSDOWN and prot & M.PROT_GROWSUP:
        raise SyscallError(errno.EINVAL)
    t.mm.mprotect(addr, length, prot & _PROT_ALL)
    return 0


def sys_brk(t: Task, args: Args) -> int:
    """brk(2): returns the new break, or the old one on failure."""
    return t.mm.set_brk(args[0])


ENTRIES = [
    partial(
        N.SYS_mmap,
        "mmap",
        sys_mmap,
        "anonymous mappings only; file mappings fail with ENODEV (#3)",
    ),
    full(N.SYS_mprotect, "mprotect", sys_mprotect),
    full(N.SYS_munmap, "munmap", sys_munmap),
    full(N.SYS_brk, "brk", sys_brk),
]
