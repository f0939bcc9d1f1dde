"""I/O scheduling priorities: ioprio_set(2) and ioprio_get(2).

The priorities are checked, kept per task and inherited as Linux does
(block/ioprio.c), but nothing applies them: the sandbox has no block
devices, and the host schedules the gofer's I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sched as SC
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN, CAP_SYS_NICE
from pkg.sentry.syscalls.linux.sys_sched import prio_targets
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

IOPRIO_WHO_PROCESS = 1
IOPRIO_WHO_PGRP = 2
IOPRIO_WHO_USER = 3

IOPRIO_CLASS_NONE = 0
IOPRIO_CLASS_RT = 1
IOPRIO_CLASS_BE = 2
IOPRIO_CLASS_IDLE = 3

_CLASS_SHIFT = 13
_LEVEL_MASK = 0x7


def _value(cls: int, level: int) -> int:
    return cls << _CLASS_SHIFT | level


def _check(t: Task, prio: int) -> None:
    """ioprio_check_cap.

    Raises:
        SyscallError: EPERM for the real-time class without CAP_SYS_NICE
            or CAP_SYS_ADMIN; EINVAL for an unknown class or a level with
            no class.
    """
    cls, level = prio >> _CLASS_SHIFT & 0x7, prio & _LEVEL_MASK
    if cls == IOPRIO_CLASS_RT:
        c = t.creds
        if not c.has_capability(CAP_SYS_NICE) and not c.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
    elif cls == IOPRIO_CLASS_NONE:
        if level:
            raise SyscallError(errno.EINVAL)
    elif cls not in (IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE):
        raise SyscallError(errno.EINVAL)


def _targets(t: Task, which: int, who: int) -> list[Task]:
    """Returns the threads which and who address (none: ESRCH later);
    the IOPRIO_WHO_* values are the PRIO_* ones plus one."""
    if not IOPRIO_WHO_PROCESS <= which <= IOPRIO_WHO_USER:
        raise SyscallError(errno.EINVAL)
    return prio_targets(t, which - IOPRIO_WHO_PROCESS, who)


def _effective(task: Task) -> int:
    """__get_task_ioprio: an unset priority is that of the task's
    scheduling class at the level its nice value gives."""
    prio = task.sched.ioprio
    if prio >> _CLASS_SHIFT != IOPRIO_CLASS_NONE:
        return prio
    sched = task.sched
    if sched.policy == SC.SCHED_IDLE:
        cls = IOPRIO_CLASS_IDLE
    elif sched.policy in (SC.SCHED_FIFO, SC.SCHED_RR):
        cls = IOPRIO_CLASS_RT
    else:
        cls = IOPRIO_CLASS_BE
    return _value(cls, (sched.nice + 20) // 5)


def sys_ioprio_set(t: Task, args: Args) -> int:
    """ioprio_set(2)."""
    which, who, prio = s32(args[0]), s32(args[1]), s32(args[2])
    _check(t, prio)
    # The priority is an unsigned short.
    prio &= 0xFFFF
    targets = _targets(t, which, who)
    if not targets:
        raise SyscallError(errno.ESRCH)
    c = t.creds
    for x in targets:
        # Like Linux, the first refusal stops the walk.
        if x.creds.ruid not in (c.euid, c.ruid) and not c.has_capability(CAP_SYS_NICE):
            raise SyscallError(errno.EPERM)
        x.sched.ioprio = prio
    return 0


def sys_ioprio_get(t: Task, args: Args) -> int:
    """ioprio_get(2): a thread's priority as set, or the best (lowest)
    effective priority of a process group's or a user's threads."""
    which, who = s32(args[0]), s32(args[1])
    targets = _targets(t, which, who)
    if not targets:
        raise SyscallError(errno.ESRCH)
    if which == IOPRIO_WHO_PROCESS:
        return targets[0].sched.ioprio
    return min(_effective(x) for x in targets)


ENTRIES = [
    partial(
        N.SYS_ioprio_set,
        "ioprio_set",
        sys_ioprio_set,
        "kept and reported, not applied (no block devices); CLONE_IO does "
        "not share a priority",
    ),
    partial(
        N.SYS_ioprio_get,
        "ioprio_get",
        sys_ioprio_get,
        "reports what ioprio_set kept",
    ),
]
