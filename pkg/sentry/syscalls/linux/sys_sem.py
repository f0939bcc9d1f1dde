"""System V semaphores: semget(2), semop(2), semtimedop(2), semctl(2)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.syscalls.linux.sys_time import read_timespec
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def sys_semget(t: Task, args: Args) -> int:
    """semget(2)."""
    return ipc_of(t).sem.get(t.creds, s32(args[0]), s32(args[1]), s32(args[2]))


def _semtimedop(t: Task, ident: int, sops: int, nsops: int, timeout: int) -> int:
    # The checks in do_semtimedop's order.
    if nsops < 1 or ident < 0:
        raise SyscallError(errno.EINVAL)
    if nsops > I.SEMOPM:
        raise SyscallError(errno.E2BIG)
    raw = t.copy_in(sops, nsops * I.SEMBUF.size)
    ops = list(I.SEMBUF.iter_unpack(raw))
    deadline = None
    if timeout:
        deadline = time.monotonic() + read_timespec(t, timeout) / 1e9
    ipc_of(t).sem.semop(t, ident, ops, deadline)
    return 0


def sys_semop(t: Task, args: Args) -> int:
    """semop(2)."""
    return _semtimedop(t, s32(args[0]), args[1], args[2], 0)


def sys_semtimedop(t: Task, args: Args) -> int:
    """semtimedop(2)."""
    return _semtimedop(t, s32(args[0]), args[1], args[2], args[3])


def sys_semctl(t: Task, args: Args) -> int:
    """semctl(2)."""
    return ipc_of(t).sem.ctl(t, s32(args[0]), s32(args[1]), s32(args[2]), args[3])


ENTRIES = [
    full(N.SYS_semget, "semget", sys_semget),
    partial(
        N.SYS_semop,
        "semop",
        sys_semop,
        "SEM_UNDO lists are per process: CLONE_SYSVSEM does not share one "
        "between processes, nor does its absence split one between threads "
        "(#5)",
    ),
    partial(N.SYS_semtimedop, "semtimedop", sys_semtimedop, "as semop (#5)"),
    full(N.SYS_semctl, "semctl", sys_semctl),
]
