"""Process odds and ends: personality(2), getrusage(2), times(2) and
sysinfo(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.abi.linux import wait as W
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.sched_stats import FSHIFT
from pkg.sentry.kernel.task_acct import (
    Usage,
    ns_to_ticks,
    sample_max_rss_locked,
    task_usage,
    thread_group_usage_locked,
)
from pkg.sentry.syscalls.linux.sys_thread import write_rusage
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# personality(2): the query value.
_PERSONALITY_QUERY = 0xFFFFFFFF
_TMS = struct.Struct("<qqqq")
# struct sysinfo on x86-64: uptime, loads[3], total/free/shared/buffer ram,
# total/free swap, procs, pad, total/free high, mem_unit, padding.
_SYSINFO = struct.Struct("<q3Q6QHH4xQQI4x")
_SI_LOAD_SHIFT = 16


def sys_personality(t: Task, args: Args) -> int:
    """personality(2): sets the execution domain and returns the old one."""
    persona = u32(args[0])
    # TODO(#3): ADDR_NO_RANDOMIZE should make execve lay the address space
    # out without randomization; the loader always randomizes.
    old = t.personality
    if persona != _PERSONALITY_QUERY:
        t.personality = persona
    return old


def rusage_of(t: Task, who: int) -> Usage:
    """Returns the usage getrusage(who) reports.

    Raises:
        SyscallError: EINVAL for an unknown who.
    """
    ts = t.kernel.tasks
    if who == W.RUSAGE_THREAD:
        usage = task_usage(t)
        with ts.mu:
            usage.max_rss_kb = sample_max_rss_locked(t.tg)
        return usage
    if who == W.RUSAGE_SELF:
        with ts.mu:
            return thread_group_usage_locked(t.tg)
    if who == W.RUSAGE_CHILDREN:
        with ts.mu:
            return t.tg.child_usage.copy()
    raise SyscallError(errno.EINVAL)


def sys_getrusage(t: Task, args: Args) -> int:
    """getrusage(2)."""
    usage = rusage_of(t, s32(args[0]))
    write_rusage(t, args[1], usage)
    return 0


def sys_times(t: Task, args: Args) -> int:
    """times(2): returns clock ticks since boot."""
    if args[0]:
        ts = t.kernel.tasks
        with ts.mu:
            own = thread_group_usage_locked(t.tg)
            children = t.tg.child_usage.copy()
        t.copy_out(
            args[0],
            _TMS.pack(
                ns_to_ticks(own.utime_ns),
                ns_to_ticks(own.stime_ns),
                ns_to_ticks(children.utime_ns),
                ns_to_ticks(children.stime_ns),
            ),
        )
    return ns_to_ticks(t.kernel.uptime_ns())


def sys_sysinfo(t: Task, args: Args) -> int:
    """sysinfo(2): the sandbox's uptime, load and tasks, and its memory as
    /proc/meminfo shows it."""
    k = t.kernel
    total = k.total_memory
    free = k.free_memory()
    procs = min(len(k.tasks.live_tasks()), 0xFFFF)
    # The loads are in 1/65536ths (SI_LOAD_SHIFT), the averages in FSHIFT.
    loads = [x << (_SI_LOAD_SHIFT - FSHIFT) for x in k.stats.load.avenrun]
    t.copy_out(
        args[0],
        _SYSINFO.pack(
            k.uptime_ns() // 1_000_000_000,
            *loads,
            total,
            free,
            0,
            0,
            0,
            0,
            procs,
            0,
            0,
            0,
            1,
        ),
    )
    return 0


ENTRIES = [
    partial(
        N.SYS_personality,
        "personality",
        sys_personality,
        "recorded and inherited; ADDR_NO_RANDOMIZE and the other flags do "
        "not change the memory layout yet (#3)",
    ),
    partial(
        N.SYS_getrusage,
        "getrusage",
        sys_getrusage,
        "user time is wall time running application code, system time the "
        "sentry's CPU time for the task; maxrss is sampled, not tracked; "
        "context switches are waits and preemptions; no fault counts",
    ),
    full(N.SYS_times, "times", sys_times),
    partial(
        N.SYS_sysinfo,
        "sysinfo",
        sys_sysinfo,
        "load averages are 0; no swap",
    ),
]
