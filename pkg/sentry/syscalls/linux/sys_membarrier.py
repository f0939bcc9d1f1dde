"""membarrier(2).

Application threads run in stub processes of the platform, which the host
kernel knows nothing about as a group, so every barrier is the host's
global one (MEMBARRIER_CMD_GLOBAL): it waits until every CPU has passed a
full memory barrier, which is what each command promises for the threads
it covers.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import membarrier as MB
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)

# What QUERY reports: everything but the rseq commands (the sentry has no
# rseq, so they fail as in a kernel built without it).
SUPPORTED = (
    MB.MEMBARRIER_CMD_GLOBAL
    | MB.MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MB.MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MB.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MB.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
    | MB.MEMBARRIER_CMD_GET_REGISTRATIONS
)

# Registration command -> the command it enables.
_REGISTER = {
    MB.MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: MB.MEMBARRIER_CMD_GLOBAL_EXPEDITED,
    MB.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED,
    MB.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: (
        MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    ),
}


def host_barrier() -> None:
    """Runs a full memory barrier on every host CPU."""
    if os.cpu_count() == 1:
        return
    if _libc.syscall(N.SYS_membarrier, MB.MEMBARRIER_CMD_GLOBAL, 0, 0) != 0:
        err = ctypes.get_errno()
        log.warning("membarrier: host barrier failed: %s", os.strerror(err))
        raise SyscallError(err)


def sys_membarrier(t: Task, args: Args) -> int:
    """membarrier(2)."""
    cmd, flags = s32(args[0]), args[1] & 0xFFFFFFFF
    if cmd == MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ:
        if flags not in (0, MB.MEMBARRIER_CMD_FLAG_CPU):
            raise SyscallError(errno.EINVAL)
    elif flags:
        raise SyscallError(errno.EINVAL)
    mm = t.mm
    if cmd == MB.MEMBARRIER_CMD_QUERY:
        return SUPPORTED
    if cmd in (MB.MEMBARRIER_CMD_GLOBAL, MB.MEMBARRIER_CMD_GLOBAL_EXPEDITED):
        host_barrier()
        return 0
    if cmd in _REGISTER:
        mm.membarrier_registered |= cmd
        return 0
    if cmd in (
        MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED,
        MB.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
    ):
        register = {v: k for k, v in _REGISTER.items()}[cmd]
        if not mm.membarrier_registered & register:
            raise SyscallError(errno.EPERM)
        host_barrier()
        return 0
    if cmd == MB.MEMBARRIER_CMD_GET_REGISTRATIONS:
        return mm.membarrier_registered
    raise SyscallError(errno.EINVAL)


ENTRIES = [
    partial(
        N.SYS_membarrier,
        "membarrier",
        sys_membarrier,
        "every barrier is a host-wide MEMBARRIER_CMD_GLOBAL; the rseq "
        "commands fail with EINVAL (no rseq)",
    ),
]
