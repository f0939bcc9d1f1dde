"""kcmp(2): whether two processes share a kernel resource.

Like Linux (kernel/kcmp.c), resources are ordered by their address mixed
with a secret per type, so that the order is stable within one boot (the
sandbox's) and says nothing about where objects are.
"""

from __future__ import annotations

import secrets
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.epoll.epoll import EpollInstance
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.syscalls.linux.sys_thread import may_access
from pkg.sentry.syscalls.syscall import Args, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

KCMP_FILE = 0
KCMP_VM = 1
KCMP_FILES = 2
KCMP_FS = 3
KCMP_SIGHAND = 4
KCMP_IO = 5
KCMP_SYSVSEM = 6
KCMP_EPOLL_TFD = 7
KCMP_TYPES = 8

# struct kcmp_epoll_slot: efd, tfd, toff.
_EPOLL_SLOT = struct.Struct("<III")
_MASK = (1 << 64) - 1
# Per type: a value to xor and an odd one to multiply (kcmp_cookies).
_COOKIES = [
    (secrets.randbits(64), secrets.randbits(64) | 1 | 1 << 63)
    for _ in range(KCMP_TYPES)
]


def _order(a: object, b: object, kind: int) -> int:
    """Returns 0 if a is b, else 1 or 2 as a sorts before or after b."""
    if a is b:
        return 0
    x, m = _COOKIES[kind]
    ka = ((id(a) ^ x) * m) & _MASK
    kb = ((id(b) ^ x) * m) & _MASK
    return 1 if ka < kb else 2


def _resource(task: Task, kind: int) -> object:
    """Returns the object a process shares under kind, as kcmp compares."""
    if kind == KCMP_VM:
        return task.mm
    if kind == KCMP_FILES:
        return task.fd_table
    if kind == KCMP_FS:
        return task.fs
    if kind == KCMP_SIGHAND:
        return task.tg.signal_handlers
    if kind == KCMP_IO:
        # Every task has an I/O context of its own (CLONE_IO is not
        # modelled).
        return task
    # KCMP_SYSVSEM: the process's semaphore undo list, None (Linux's NULL)
    # before its first SEM_UNDO operation.
    return ipc_of(task).sem.undo_list(task.tg)


def sys_kcmp(t: Task, args: Args) -> int:
    """kcmp(2)."""
    pid1, pid2, kind, idx1, idx2 = (
        s32(args[0]),
        s32(args[1]),
        s32(args[2]),
        args[3],
        args[4],
    )
    tasks = t.kernel.tasks
    task1, task2 = tasks.find_task(pid1), tasks.find_task(pid2)
    if task1 is None or task2 is None:
        raise SyscallError(errno.ESRCH)
    if not may_access(t, task1.tg) or not may_access(t, task2.tg):
        raise SyscallError(errno.EPERM)
    if kind == KCMP_FILE:
        f1 = task1.fd_table.get(u32(idx1))
        f2 = task2.fd_table.get(u32(idx2))
        return _order(f1, f2, KCMP_FILE)
    if kind == KCMP_EPOLL_TFD:
        f1 = task1.fd_table.get(u32(idx1))
        efd, tfd, toff = _EPOLL_SLOT.unpack(t.copy_in(idx2, _EPOLL_SLOT.size))
        ep = task2.fd_table.get(efd)
        if not isinstance(ep, EpollInstance):
            raise SyscallError(errno.EINVAL)
        return _order(f1, ep.target_file(tfd, toff), KCMP_FILE)
    if not 0 <= kind < KCMP_TYPES:
        raise SyscallError(errno.EINVAL)
    return _order(_resource(task1, kind), _resource(task2, kind), kind)


ENTRIES = [
    partial(
        N.SYS_kcmp,
        "kcmp",
        sys_kcmp,
        "KCMP_IO tells tasks apart (no CLONE_IO); undo lists are per "
        "process (no CLONE_SYSVSEM sharing)",
    ),
]
