"""Sessions and process groups: setsid(2), getsid(2), setpgid(2),
getpgid(2), getpgrp(2). The rules are kernel/sys.c's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.sessions import (
    join_process_group_locked,
    new_process_group_locked,
    new_session_locked,
)
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup


def sys_setsid(t: Task, args: Args) -> int:
    """setsid(2): fails with EPERM if a process group already has the
    caller's id (the caller leads one, or a group it created survives)."""
    ts = t.kernel.tasks
    tg = t.tg
    with ts.mu:
        if tg.tgid in ts.process_groups:
            raise SyscallError(errno.EPERM)
        new_session_locked(ts, tg)
    return tg.tgid


def _find_process(t: Task, pid: int) -> ThreadGroup:
    """Returns the process pid names (0: the caller's), live or zombie.

    Preconditions: the TaskSet's mu is held.
    """
    if pid == 0:
        return t.tg
    ts = t.kernel.tasks
    tg = ts.thread_groups.get(pid)
    if tg is None:
        task = ts.tasks.get(pid)
        if task is None:
            raise SyscallError(errno.ESRCH)
        tg = task.tg
    return tg


def sys_getsid(t: Task, args: Args) -> int:
    """getsid(2)."""
    with t.kernel.tasks.mu:
        return _find_process(t, s32(args[0])).sid


def sys_getpgid(t: Task, args: Args) -> int:
    """getpgid(2)."""
    with t.kernel.tasks.mu:
        return _find_process(t, s32(args[0])).pgid


def sys_getpgrp(t: Task, args: Args) -> int:
    """getpgrp(2)."""
    return t.tg.pgid


def sys_setpgid(t: Task, args: Args) -> int:
    """setpgid(2)."""
    pid, pgid = s32(args[0]), s32(args[1])
    me = t.tg
    if pid == 0:
        pid = me.tgid
    if pgid == 0:
        pgid = pid
    if pgid < 0:
        raise SyscallError(errno.EINVAL)
    ts = t.kernel.tasks
    with ts.mu:
        target = ts.thread_groups.get(pid)
        if target is None:
            task = ts.tasks.get(pid)
            if task is None:
                raise SyscallError(errno.ESRCH)
            # A thread that does not lead its process.
            raise SyscallError(errno.EINVAL)
        assert me.process_group is not None
        assert target.process_group is not None
        my_session = me.process_group.session
        if target.parent is me:
            if target.process_group.session is not my_session:
                raise SyscallError(errno.EPERM)
            if target.execed:
                raise SyscallError(errno.EACCES)
        elif target is not me:
            raise SyscallError(errno.ESRCH)
        if target.process_group.session.sid == target.tgid:
            # A session leader stays in its own group.
            raise SyscallError(errno.EPERM)
        if pgid == target.tgid:
            pg = ts.process_groups.get(pgid)
            if pg is None:
                new_process_group_locked(ts, target)
                return 0
        else:
            pg = ts.process_groups.get(pgid)
            if pg is None or pg.session is not my_session:
                raise SyscallError(errno.EPERM)
        join_process_group_locked(ts, target, pg)
    return 0


ENTRIES = [
    full(N.SYS_setpgid, "setpgid", sys_setpgid),
    full(N.SYS_getpgrp, "getpgrp", sys_getpgrp),
    full(N.SYS_setsid, "setsid", sys_setsid),
    full(N.SYS_getpgid, "getpgid", sys_getpgid),
    full(N.SYS_getsid, "getsid", sys_getsid),
]
