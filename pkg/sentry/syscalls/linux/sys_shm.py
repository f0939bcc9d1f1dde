"""System V shared memory: shmget(2), shmat(2), shmdt(2), shmctl(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import sysno as N
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def sys_shmget(t: Task, args: Args) -> int:
    """shmget(2)."""
    return ipc_of(t).shm.get(t.creds, t.pid, s32(args[0]), args[1], s32(args[2]))


def sys_shmat(t: Task, args: Args) -> int:
    """shmat(2)."""
    return ipc_of(t).shm.attach(t, s32(args[0]), args[1], s32(args[2]))


def sys_shmdt(t: Task, args: Args) -> int:
    """shmdt(2)."""
    ipc_of(t).shm.detach(t, args[0])
    return 0


def sys_shmctl(t: Task, args: Args) -> int:
    """shmctl(2)."""
    return ipc_of(t).shm.ctl(t, s32(args[0]), s32(args[1]), args[2])


ENTRIES = [
    partial(
        N.SYS_shmget,
        "shmget",
        sys_shmget,
        "SHM_HUGETLB fails with ENOMEM: there are no huge pages (#3)",
    ),
    full(N.SYS_shmat, "shmat", sys_shmat),
    full(N.SYS_shmdt, "shmdt", sys_shmdt),
    full(N.SYS_shmctl, "shmctl", sys_shmctl),
]
