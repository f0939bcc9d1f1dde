"""getrandom(2)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

GRND_NONBLOCK = 1
GRND_RANDOM = 2
GRND_INSECURE = 4
# A single call returns at most this much (drivers/char/random.c).
_MAX_CHUNK = 0x1FFFFFF


def sys_getrandom(t: Task, args: Args) -> int:
    """getrandom(2). The host pool is initialized, so it never blocks."""
    addr, length, flags = args[0], args[1], args[2] & 0xFFFFFFFF
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE):
        raise SyscallError(errno.EINVAL)
    if flags & GRND_INSECURE and flags & GRND_RANDOM:
        raise SyscallError(errno.EINVAL)
    length = min(length, _MAX_CHUNK)
    if length == 0:
        return 0
    n = t.mm.copy_out_partial(addr, os.urandom(length))
    if n == 0:
        raise SyscallError(errno.EFAULT)
    return n


ENTRIES = [
    full(N.SYS_getrandom, "getrandom", sys_getrandom),
]
