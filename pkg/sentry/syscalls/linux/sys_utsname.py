"""uname(2), sethostname(2) and setdomainname(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import version as V
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.kernel.uts_namespace import uts_of
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_UTS_LEN = 65


def _field(s: str) -> bytes:
    # Names set by the application are any bytes (kept as surrogate escapes).
    b = s.encode(errors="surrogateescape")[: _UTS_LEN - 1]
    return b + bytes(_UTS_LEN - len(b))


def sys_uname(t: Task, args: Args) -> int:
    """uname(2)."""
    uts = uts_of(t)
    with uts.mu:
        hostname, domainname = uts.hostname, uts.domainname
    buf = b"".join(
        _field(s)
        for s in (
            V.SYSNAME,
            hostname,
            V.RELEASE,
            V.VERSION,
            V.MACHINE,
            domainname,
        )
    )
    t.copy_out(args[0], buf)
    return 0


def _set_name(t: Task, addr: int, length: int) -> str:
    if not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if length < 0 or length > _UTS_LEN - 1:
        raise SyscallError(errno.EINVAL)
    return t.copy_in(addr, length).decode(errors="surrogateescape")


def sys_sethostname(t: Task, args: Args) -> int:
    """sethostname(2)."""
    name = _set_name(t, args[0], s32(args[1]))
    uts = uts_of(t)
    with uts.mu:
        uts.hostname = name
    return 0


def sys_setdomainname(t: Task, args: Args) -> int:
    """setdomainname(2)."""
    name = _set_name(t, args[0], s32(args[1]))
    uts = uts_of(t)
    with uts.mu:
        uts.domainname = name
    return 0


ENTRIES = [
    full(N.SYS_uname, "uname", sys_uname),
    full(N.SYS_sethostname, "sethostname", sys_sethostname),
    full(N.SYS_setdomainname, "setdomainname", sys_setdomainname),
]
