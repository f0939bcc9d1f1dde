"""The mmap family: mmap(2), munmap(2), mprotect(2), mremap(2), brk(2),
madvise(2), mincore(2), msync(2), mlock(2), mlock2(2), munlock(2),
mlockall(2) and munlockall(2).

Handlers decode arguments and check what depends on the file and the caller
(access modes, capabilities); the address-space rules live in
pkg/sentry/mm/syscalls.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import mman as M
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_IPC_LOCK, CAP_SYS_ADMIN
from pkg.sentry.mm.memory_manager import MmapOpts
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Flags every mmap accepts (include/linux/mman.h LEGACY_MAP_MASK); with
# MAP_SHARED_VALIDATE, a file mapping with any other flag fails EOPNOTSUPP.
_LEGACY_MAP_MASK = (
    M.MAP_SHARED
    | M.MAP_PRIVATE
    | M.MAP_FIXED
    | M.MAP_ANONYMOUS
    | M.MAP_DENYWRITE
    | M.MAP_EXECUTABLE
    | M.MAP_UNINITIALIZED
    | M.MAP_GROWSDOWN
    | M.MAP_LOCKED
    | M.MAP_NORESERVE
    | M.MAP_POPULATE
    | M.MAP_NONBLOCK
    | M.MAP_STACK
    | M.MAP_HUGETLB
    | M.MAP_32BIT
    | (0x3F << 26)  # MAP_HUGE_SHIFT size bits
)
_PROT_ALL = M.PROT_READ | M.PROT_WRITE | M.PROT_EXEC
_PROT_VALID = _PROT_ALL | M.PROT_SEM | M.PROT_GROWSDOWN | M.PROT_GROWSUP
_MLOCK_ONFAULT = 1


def sys_mmap(t: Task, args: Args) -> int:
    """mmap(2)."""
    addr, length, prot, flags, fd, offset = args
    prot &= 0xFFFFFFFF
    flags &= 0xFFFFFFFF
    fd = s32(fd)
    if offset % M.PAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    anonymous = bool(flags & M.MAP_ANONYMOUS)
    file = None if anonymous else t.fd_table.get(fd)
    if flags & M.MAP_HUGETLB:
        # TODO(#3): no hugetlbfs; Linux fails the same way with no huge page
        # pool (ENOMEM), and for files that are not on hugetlbfs (EINVAL).
        raise SyscallError(errno.ENOMEM if anonymous else errno.EINVAL)
    if length == 0:
        raise SyscallError(errno.EINVAL)
    if M.page_round_up(length) == 0 or length > t.mm.max_address:
        raise SyscallError(errno.ENOMEM)
    if prot & ~_PROT_VALID:
        # Linux ignores unknown bits only in pkey-less kernels; reject as
        # mprotect does.
        raise SyscallError(errno.EINVAL)
    fixed = bool(flags & M.MAP_FIXED)
    noreplace = bool(flags & M.MAP_FIXED_NOREPLACE) and not fixed
    map_type = flags & M.MAP_TYPE
    growsdown = bool(flags & M.MAP_GROWSDOWN)
    opts = MmapOpts(
        length=length,
        prot=prot & _PROT_ALL,
        addr=addr,
        fixed=fixed,
        noreplace=noreplace,
        growsdown=growsdown,
        populate=flags & (M.MAP_POPULATE | M.MAP_NONBLOCK) == M.MAP_POPULATE,
        noreserve=bool(flags & M.MAP_NORESERVE),
        locked=bool(flags & M.MAP_LOCKED),
        map32=bool(flags & M.MAP_32BIT),
    )
    if flags & M.MAP_LOCKED and not _can_mlock(t):
        raise SyscallError(errno.EPERM)
    if file is None:
        if map_type == M.MAP_SHARED:
            if growsdown:
                raise SyscallError(errno.EINVAL)
            opts.private = False
        elif map_type != M.MAP_PRIVATE:
            raise SyscallError(errno.EINVAL)
    else:
        if map_type in (M.MAP_SHARED, M.MAP_SHARED_VALIDATE):
            if map_type == M.MAP_SHARED_VALIDATE and flags & ~_LEGACY_MAP_MASK:
                raise SyscallError(errno.EOPNOTSUPP)
            if prot & M.PROT_WRITE and not file.writable:
                raise SyscallError(errno.EACCES)
            opts.private = False
            if not file.writable:
                opts.max_prot &= ~M.PROT_WRITE
        elif map_type != M.MAP_PRIVATE:
            raise SyscallError(errno.EINVAL)
        if not file.readable:
            raise SyscallError(errno.EACCES)
        if growsdown:
            raise SyscallError(errno.EINVAL)
        if offset + M.page_round_up(length) >= 1 << 64:
            raise SyscallError(errno.EOVERFLOW)
        opts.offset = offset
        opts.file = file
        file.configure_mmap(t, opts)
        if opts.prot & ~opts.max_prot:
            raise SyscallError(errno.EACCES)
    return t.mm.mmap(opts, t.tg.limits, t.creds.has_capability(CAP_IPC_LOCK))


def sys_munmap(t: Task, args: Args) -> int:
    """munmap(2)."""
    t.mm.munmap(args[0], args[1])
    return 0


def sys_mprotect(t: Task, args: Args) -> int:
    """mprotect(2)."""
    addr, length, prot = args[0], args[1], args[2] & 0xFFFFFFFF
    if prot & ~_PROT_VALID:
        raise SyscallError(errno.EINVAL)
    if prot & M.PROT_GROWSDOWN and prot & M.PROT_GROWSUP:
        raise SyscallError(errno.EINVAL)
    if prot & M.PROT_GROWSUP:
        # x86 has no upward-growing mappings.
        raise SyscallError(errno.EINVAL)
    t.mm.mprotect(addr, length, prot & _PROT_ALL, bool(prot & M.PROT_GROWSDOWN))
    return 0


def sys_brk(t: Task, args: Args) -> int:
    """brk(2): returns the new break, or the old one on failure."""
    return t.mm.set_brk(args[0], t.tg.limits)


def sys_mremap(t: Task, args: Args) -> int:
    """mremap(2)."""
    old_addr, old_len, new_len, flags, new_addr = args[:5]
    return t.mm.mremap(
        old_addr, old_len, new_len, flags & 0xFFFFFFFF, new_addr, t.tg.limits
    )


def sys_madvise(t: Task, args: Args) -> int:
    """madvise(2)."""
    addr, length, advice = args[0], args[1], s32(args[2])
    t.mm.madvise(addr, length, advice, t.creds.has_capability(CAP_SYS_ADMIN))
    return 0


def sys_mincore(t: Task, args: Args) -> int:
    """mincore(2)."""
    addr, length, vec = args[0], args[1], args[2]
    pages = (length + M.PAGE_SIZE - 1) // M.PAGE_SIZE
    if addr % M.PAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    if addr + length > t.mm.max_address or addr + length < addr:
        raise SyscallError(errno.ENOMEM)
    if pages and (vec + pages > t.mm.max_address or vec + pages < vec):
        raise SyscallError(errno.EFAULT)
    t.mm.copy_out(vec, t.mm.mincore(addr, length))
    return 0


def sys_msync(t: Task, args: Args) -> int:
    """msync(2)."""
    t.mm.msync(args[0], args[1], s32(args[2]))
    return 0


def _can_mlock(t: Task) -> bool:
    # can_do_mlock: a non-zero RLIMIT_MEMLOCK, or CAP_IPC_LOCK.
    return t.tg.limits.soft(L.RLIMIT_MEMLOCK) != 0 or t.creds.has_capability(
        CAP_IPC_LOCK
    )


def sys_mlock(t: Task, args: Args) -> int:
    """mlock(2)."""
    t.mm.mlock(
        args[0], args[1], False, t.tg.limits, t.creds.has_capability(CAP_IPC_LOCK)
    )
    return 0


def sys_mlock2(t: Task, args: Args) -> int:
    """mlock2(2)."""
    flags = args[2] & 0xFFFFFFFF
    if flags & ~_MLOCK_ONFAULT:
        raise SyscallError(errno.EINVAL)
    t.mm.mlock(
        args[0],
        args[1],
        bool(flags & _MLOCK_ONFAULT),
        t.tg.limits,
        t.creds.has_capability(CAP_IPC_LOCK),
    )
    return 0


def sys_munlock(t: Task, args: Args) -> int:
    """munlock(2)."""
    t.mm.munlock(args[0], args[1])
    return 0


def sys_mlockall(t: Task, args: Args) -> int:
    """mlockall(2)."""
    t.mm.mlockall(s32(args[0]), t.tg.limits, t.creds.has_capability(CAP_IPC_LOCK))
    return 0


def sys_munlockall(t: Task, args: Args) -> int:
    """munlockall(2)."""
    t.mm.munlockall()
    return 0


ENTRIES = [
    partial(
        N.SYS_mmap,
        "mmap",
        sys_mmap,
        "MAP_HUGETLB fails as without a huge page pool; files map only where "
        "the file implements configure_mmap",
    ),
    full(N.SYS_mprotect, "mprotect", sys_mprotect),
    full(N.SYS_munmap, "munmap", sys_munmap),
    full(N.SYS_brk, "brk", sys_brk),
    full(N.SYS_mremap, "mremap", sys_mremap),
    partial(
        N.SYS_madvise,
        "madvise",
        sys_madvise,
        "MADV_COLLAPSE fails EINVAL (no huge pages); MADV_HWPOISON and "
        "MADV_SOFT_OFFLINE fail EPERM/EINVAL; MADV_COLD and MADV_PAGEOUT are "
        "hints with no effect",
    ),
    full(N.SYS_mincore, "mincore", sys_mincore),
    full(N.SYS_msync, "msync", sys_msync),
    partial(N.SYS_mlock, "mlock", sys_mlock, "pages are populated, never swapped"),
    partial(N.SYS_mlock2, "mlock2", sys_mlock2, "pages are populated, never swapped"),
    full(N.SYS_munlock, "munlock", sys_munlock),
    partial(
        N.SYS_mlockall, "mlockall", sys_mlockall, "pages are populated, never swapped"
    ),
    full(N.SYS_munlockall, "munlockall", sys_munlockall),
]
