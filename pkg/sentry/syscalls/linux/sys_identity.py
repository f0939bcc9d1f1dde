"""User, group and capability identity: getuid(2), setuid(2), setreuid(2),
setresuid(2), setfsuid(2) and their gid twins, getgroups(2), setgroups(2),
capget(2) and capset(2).

Credentials belong to the calling thread: these calls change the caller
only, as in Linux (libc makes every thread call them). The rules live in
pkg/sentry/kernel/credentials.py.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import credentials as C
from pkg.sentry.syscalls.syscall import Args, full, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# capget(2)/capset(2) header versions and how many u32 words each moves.
_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_DATA = struct.Struct("<III")  # effective, permitted, inheritable


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


def sys_setuid(t: Task, args: Args) -> int:
    """setuid(2)."""
    C.commit_creds(t, C.setuid(t.creds, u32(args[0])))
    return 0


def sys_setreuid(t: Task, args: Args) -> int:
    """setreuid(2)."""
    C.commit_creds(t, C.setreuid(t.creds, u32(args[0]), u32(args[1])))
    return 0


def sys_setresuid(t: Task, args: Args) -> int:
    """setresuid(2)."""
    new = C.setresuid(t.creds, u32(args[0]), u32(args[1]), u32(args[2]))
    C.commit_creds(t, new)
    return 0


def sys_setfsuid(t: Task, args: Args) -> int:
    """setfsuid(2): returns the previous fs uid, never an error."""
    new, old = C.setfsuid(t.creds, u32(args[0]))
    C.commit_creds(t, new)
    return old


def sys_setgid(t: Task, args: Args) -> int:
    """setgid(2)."""
    C.commit_creds(t, C.setgid(t.creds, u32(args[0])))
    return 0


def sys_setregid(t: Task, args: Args) -> int:
    """setregid(2)."""
    C.commit_creds(t, C.setregid(t.creds, u32(args[0]), u32(args[1])))
    return 0


def sys_setresgid(t: Task, args: Args) -> int:
    """setresgid(2)."""
    new = C.setresgid(t.creds, u32(args[0]), u32(args[1]), u32(args[2]))
    C.commit_creds(t, new)
    return 0


def sys_setfsgid(t: Task, args: Args) -> int:
    """setfsgid(2): returns the previous fs gid, never an error."""
    new, old = C.setfsgid(t.creds, u32(args[0]))
    C.commit_creds(t, new)
    return old


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


def sys_setgroups(t: Task, args: Args) -> int:
    """setgroups(2)."""
    size = s32(args[0])
    if not t.creds.has_capability(C.CAP_SETGID):
        raise SyscallError(errno.EPERM)
    if size < 0 or size > C.NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    groups = list(struct.unpack(f"<{size}I", t.copy_in(args[1], 4 * size)))
    C.commit_creds(t, C.setgroups(t.creds, groups))
    return 0


def _cap_words(t: Task, header: int) -> int:
    """Returns how many u32 words per set the header's version moves; an
    unknown version is rewritten to the preferred one (EINVAL)."""
    version = t.mm.read_u32(header)
    if version == _LINUX_CAPABILITY_VERSION_1:
        return 1
    if version in (_LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3):
        return 2
    t.mm.write_u32(header, _LINUX_CAPABILITY_VERSION_3)
    raise SyscallError(errno.EINVAL)


def sys_capget(t: Task, args: Args) -> int:
    """capget(2)."""
    header, data = args[0], args[1]
    try:
        words = _cap_words(t, header)
    except SyscallError as e:
        # Probing the preferred version with a NULL data pointer succeeds.
        if e.errno == errno.EINVAL and not data:
            return 0
        raise
    if not data:
        return 0
    pid = t.mm.read_i32(header + 4)
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    target = t
    if pid and pid != t.tid:
        found = t.kernel.tasks.find_task(pid)
        if found is None:
            raise SyscallError(errno.ESRCH)
        target = found
    c = target.creds
    out = b"".join(
        _CAP_DATA.pack(
            (c.effective >> (32 * i)) & 0xFFFFFFFF,
            (c.permitted >> (32 * i)) & 0xFFFFFFFF,
            (c.inheritable >> (32 * i)) & 0xFFFFFFFF,
        )
        for i in range(words)
    )
    t.copy_out(data, out)
    return 0


def sys_capset(t: Task, args: Args) -> int:
    """capset(2): only the caller's own sets may change."""
    header, data = args[0], args[1]
    words = _cap_words(t, header)
    pid = t.mm.read_i32(header + 4)
    if pid and pid != t.tid:
        raise SyscallError(errno.EPERM)
    raw = t.copy_in(data, _CAP_DATA.size * words)
    effective = permitted = inheritable = 0
    for i in range(words):
        e, p, inh = _CAP_DATA.unpack_from(raw, _CAP_DATA.size * i)
        effective |= e << (32 * i)
        permitted |= p << (32 * i)
        inheritable |= inh << (32 * i)
    C.commit_creds(t, C.capset(t.creds, effective, permitted, inheritable))
    return 0


ENTRIES = [
    full(N.SYS_getuid, "getuid", sys_getuid),
    full(N.SYS_getgid, "getgid", sys_getgid),
    full(N.SYS_setuid, "setuid", sys_setuid),
    full(N.SYS_setgid, "setgid", sys_setgid),
    full(N.SYS_geteuid, "geteuid", sys_geteuid),
    full(N.SYS_getegid, "getegid", sys_getegid),
    full(N.SYS_setreuid, "setreuid", sys_setreuid),
    full(N.SYS_setregid, "setregid", sys_setregid),
    full(N.SYS_getgroups, "getgroups", sys_getgroups),
    full(N.SYS_setgroups, "setgroups", sys_setgroups),
    full(N.SYS_setresuid, "setresuid", sys_setresuid),
    full(N.SYS_getresuid, "getresuid", sys_getresuid),
    full(N.SYS_setresgid, "setresgid", sys_setresgid),
    full(N.SYS_getresgid, "getresgid", sys_getresgid),
    full(N.SYS_setfsuid, "setfsuid", sys_setfsuid),
    full(N.SYS_setfsgid, "setfsgid", sys_setfsgid),
    full(N.SYS_capget, "capget", sys_capget),
    full(N.SYS_capset, "capset", sys_capset),
]
