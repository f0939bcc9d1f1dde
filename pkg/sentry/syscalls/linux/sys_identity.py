"""User and group ids: getuid(2) and friends."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# NGROUPS_MAX.
NGROUPS_MAX = 65536


def sys_getuid(t: Task, args: Args) -> int:
    """getuid(2)."""
    return t.creds.ruid


def sys_geteuid(t: Task, args: Args) -> int:
    """geteuid(2)."""
    return t.creds.euid


def sys_getgid(t: Task, args: Args) -> int:
    """getgid(2)."""
    return t.creds.rgid


def sys_getegid(t: Task, args: Args) -> int:
    """getegid(2)."""
    return t.creds.egid


def sys_getresuid(t: Task, args: Args) -> int:
    """getresuid(2)."""
    c = t.creds
    for addr, v in zip(args[:3], (c.ruid, c.euid, c.suid), strict=True):
        t.mm.write_u32(addr, v)
    return 0


def sys_getresgid(t: Task, args: Args) -> int:
    """getresgid(2)."""
    c = t.creds
    for addr, v in zip(args[:3], (c.rgid, c.egid, c.sgid), strict=True):
        t.mm.write_u32(addr, v)
    return 0


def sys_getgroups(t: Task, args: Args) -> int:
    """getgroups(2)."""
    size = s32(args[0])
    groups = t.creds.groups
    if size < 0:
        raise SyscallError(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise SyscallError(errno.EINVAL)
    t.copy_out(args[1], struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


ENTRIES = [
    full(N.SYS_getuid, "getuid", sys_getuid),
    full(N.SYS_getgid, "getgid", sys_getgid),
    full(N.SYS_geteuid, "geteuid", sys_geteuid),
    full(N.SYS_getegid, "getegid", sys_getegid),
    full(N.SYS_getgroups, "getgroups", sys_getgroups),
    full(N.SYS_getresuid, "getresuid", sys_getresuid),
    full(N.SYS_getresgid, "getresgid", sys_getresgid),
]
