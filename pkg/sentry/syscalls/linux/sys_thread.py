"""Thread and process identity and exit: exit(2), exit_group(2), getpid(2),
gettid(2), getppid(2), set_tid_address(2), set_robust_list(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.task_exit import wait_status_exited
from pkg.sentry.kernel.task_signals import group_exit
from pkg.sentry.syscalls.syscall import Args, full

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# sizeof(struct robust_list_head).
_ROBUST_LIST_HEAD_SIZE = 24


def sys_exit(t: Task, args: Args) -> int:
    """exit(2): ends the calling thread only."""
    with t.tg.signal_handlers.mu:
        t.exit_status = wait_status_exited(args[0])
        t.exiting = True
        t.interrupted = True
    return 0


def sys_exit_group(t: Task, args: Args) -> int:
    """exit_group(2): ends every thread of the process."""
    group_exit(t, wait_status_exited(args[0]))
    return 0


def sys_getpid(t: Task, args: Args) -> int:
    """getpid(2)."""
    return t.tg.tgid


def sys_gettid(t: Task, args: Args) -> int:
    """gettid(2)."""
    return t.tid


def sys_getppid(t: Task, args: Args) -> int:
    """getppid(2): 0 for the container's init, whose parent is outside."""
    with t.kernel.tasks.mu:
        parent = t.tg.parent
        return parent.tgid if parent is not None else 0


def sys_set_tid_address(t: Task, args: Args) -> int:
    """set_tid_address(2)."""
    t.clear_child_tid = args[0]
    return t.tid


def sys_set_robust_list(t: Task, args: Args) -> int:
    """set_robust_list(2). The list is walked at thread exit (#4)."""
    if args[1] != _ROBUST_LIST_HEAD_SIZE:
        raise SyscallError(errno.EINVAL)
    t.robust_list = (args[0], args[1])
    return 0


def sys_get_robust_list(t: Task, args: Args) -> int:
    """get_robust_list(2) for the calling thread or another (pid != 0)."""
    pid, head_ptr, len_ptr = args[0] & 0xFFFFFFFF, args[1], args[2]
    target = t
    if pid:
        target = t.kernel.tasks.tasks.get(pid)
        if target is None:
            raise SyscallError(errno.ESRCH)
    t.mm.write_u64(len_ptr, _ROBUST_LIST_HEAD_SIZE)
    t.mm.write_u64(head_ptr, target.robust_list[0])
    return 0


ENTRIES = [
    full(N.SYS_getpid, "getpid", sys_getpid),
    full(N.SYS_exit, "exit", sys_exit),
    full(N.SYS_getppid, "getppid", sys_getppid),
    full(N.SYS_gettid, "gettid", sys_gettid),
    full(N.SYS_set_tid_address, "set_tid_address", sys_set_tid_address),
    full(N.SYS_exit_group, "exit_group", sys_exit_group),
    full(N.SYS_set_robust_list, "set_robust_list", sys_set_robust_list),
    full(N.SYS_get_robust_list, "get_robust_list", sys_get_robust_list),
]
