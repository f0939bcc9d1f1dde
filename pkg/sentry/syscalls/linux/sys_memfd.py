"""memfd_create(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import memfd as MFD
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.memfd.memfd import new_memfd
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, partial

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def sys_memfd_create(t: Task, args: Args) -> int:
    """memfd_create(2)."""
    name_addr, flags = args[0], args[1] & 0xFFFFFFFF
    if flags & MFD.MFD_HUGETLB:
        if flags & ~(MFD.MFD_ALL_FLAGS | MFD.MFD_HUGE_MASK << MFD.MFD_HUGE_SHIFT):
            raise SyscallError(errno.EINVAL)
    elif flags & ~MFD.MFD_ALL_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & MFD.MFD_EXEC and flags & MFD.MFD_NOEXEC_SEAL:
        raise SyscallError(errno.EINVAL)
    try:
        name = t.mm.copy_in_string(name_addr, MFD.MFD_NAME_MAX_LEN + 1)
    except SyscallError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.EINVAL) from None
        raise
    if flags & MFD.MFD_HUGETLB:
        # TODO(#3): no hugetlbfs to back the file.
        raise SyscallError(errno.EINVAL)
    f = new_memfd(t.kernel.mf, name.decode(errors="surrogateescape"), flags)
    try:
        return t.fd_table.new_fd(f, bool(flags & MFD.MFD_CLOEXEC), 0, fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


ENTRIES = [
    partial(
        N.SYS_memfd_create,
        "memfd_create",
        sys_memfd_create,
        "MFD_HUGETLB fails with EINVAL; SEEK_DATA/SEEK_HOLE see no holes",
    ),
]
