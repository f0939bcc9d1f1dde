"""seccomp(2), and prctl(2)'s PR_SET_SECCOMP and PR_GET_SECCOMP, for the
application's own filters (kernel/seccomp.py)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import seccomp
from pkg.sentry.syscalls.syscall import Args, partial, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# struct sock_fprog: unsigned short len, then the filter pointer.
_SOCK_FPROG = struct.Struct("<H6xQ")
_SOCK_FILTER_SIZE = 8

# The SECCOMP_SET_MODE_FILTER flags supported. Unlike Linux, there is no
# SECCOMP_FILTER_FLAG_NEW_LISTENER (user notification), nor therefore
# SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: both fail with EINVAL.
_FILTER_FLAGS = (
    SC.SECCOMP_FILTER_FLAG_TSYNC
    | SC.SECCOMP_FILTER_FLAG_LOG
    | SC.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    | SC.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
)


def _read_filter(t: Task, addr: int) -> tuple[seccomp.Insn, ...]:
    length, filter_addr = _SOCK_FPROG.unpack(t.copy_in(addr, _SOCK_FPROG.size))
    if length == 0 or length > SC.BPF_MAXINSNS:
        raise SyscallError(errno.EINVAL)
    if not t.creds.no_new_privs and not t.creds.has_capability(21):  # SYS_ADMIN
        raise SyscallError(errno.EACCES)
    raw = t.copy_in(filter_addr, length * _SOCK_FILTER_SIZE)
    return seccomp.compile_filter(raw)


def set_mode_filter(t: Task, flags: int, addr: int) -> int:
    """SECCOMP_SET_MODE_FILTER: validates and installs a filter."""
    if flags & ~_FILTER_FLAGS:
        raise SyscallError(errno.EINVAL)
    prog = _read_filter(t, addr)
    return seccomp.attach_filter(t, prog, flags)


def sys_seccomp(t: Task, args: Args) -> int:
    """seccomp(2)."""
    op, flags, uargs = u32(args[0]), u32(args[1]), args[2]
    if op == SC.SECCOMP_SET_MODE_STRICT:
        if flags or uargs:
            raise SyscallError(errno.EINVAL)
        seccomp.set_mode_strict(t)
        return 0
    if op == SC.SECCOMP_SET_MODE_FILTER:
        return set_mode_filter(t, flags, uargs)
    if op == SC.SECCOMP_GET_ACTION_AVAIL:
        if flags:
            raise SyscallError(errno.EINVAL)
        action = t.mm.read_u32(uargs)
        if action not in seccomp.AVAILABLE_ACTIONS:
            raise SyscallError(errno.EOPNOTSUPP)
        return 0
    # SECCOMP_GET_NOTIF_SIZES and unknown operations: user notification is
    # not offered, as on kernels that predate it.
    raise SyscallError(errno.EINVAL)


def prctl_get_seccomp(t: Task) -> int:
    """prctl(PR_GET_SECCOMP): the mode (strict mode never gets here: prctl
    is not allowed in it)."""
    return t.seccomp_mode


def prctl_set_seccomp(t: Task, mode: int, filter_addr: int) -> int:
    """prctl(PR_SET_SECCOMP, mode, filter)."""
    if mode == SC.SECCOMP_MODE_STRICT:
        seccomp.set_mode_strict(t)
        return 0
    if mode == SC.SECCOMP_MODE_FILTER:
        return set_mode_filter(t, 0, filter_addr)
    raise SyscallError(errno.EINVAL)


ENTRIES = [
    partial(
        N.SYS_seccomp,
        "seccomp",
        sys_seccomp,
        "no user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER and "
        "SECCOMP_GET_NOTIF_SIZES fail with EINVAL); SECCOMP_RET_TRACE "
        "fails the call with ENOSYS, there being no tracer",
    ),
]
