"""CPU time accounting of tasks and processes (getrusage(2), times(2)).

A task's user time is the wall time its host thread spends inside the
platform's switch, running application code, as gVisor accounts it; its
system time is the CPU time of its host thread, which is the sentry's work
on the task's behalf. Both are in nanoseconds.

A process adds the times of its exited threads to those of its live ones;
the times of reaped children accumulate in their parent (RUSAGE_CHILDREN).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

# USER_HZ: the unit of clock_t in times(2) and siginfo.
CLOCK_TICKS_PER_SECOND = 100
_NS_PER_TICK = 1_000_000_000 // CLOCK_TICKS_PER_SECOND


@dataclass(slots=True)
class Usage:
    """Usage is a total of resource use (part of struct rusage)."""

    utime_ns: int = 0
    stime_ns: int = 0
    # Largest resident set, in KiB (ru_maxrss).
    max_rss_kb: int = 0

    def add(self, other: Usage) -> None:
        """Adds other's times (and the larger of the two maxrss)."""
        self.utime_ns += other.utime_ns
        self.stime_ns += other.stime_ns
        self.max_rss_kb = max(self.max_rss_kb, other.max_rss_kb)

    def copy(self) -> Usage:
        """Returns an independent copy."""
        return Usage(self.utime_ns, self.stime_ns, self.max_rss_kb)


class TaskUsage:
    """TaskUsage accumulates the application time of one task.

    `app_ns` is written only by the task's own thread (the run loop).
    """

    __slots__ = ("app_ns",)

    def __init__(self) -> None:
        self.app_ns = 0


def ns_to_ticks(ns: int) -> int:
    """Converts nanoseconds to clock ticks (clock_t)."""
    return ns // _NS_PER_TICK


def _thread_cpu_ns(t: Task) -> int:
    th = t.thread
    if th is None or th.ident is None:
        return 0
    try:
        return time.clock_gettime_ns(time.pthread_getcpuclockid(th.ident))
    except (OSError, AttributeError):
        # The thread is ending; its final time is collected by exit_task.
        return 0


def task_usage(t: Task) -> Usage:
    """Returns the usage of one live task (RUSAGE_THREAD).

    Preconditions: t has not exited (its host thread runs).
    """
    return Usage(t.usage.app_ns, _thread_cpu_ns(t))


def own_thread_usage(t: Task) -> Usage:
    """Returns t's usage, called on t's own thread (cheaper and exact)."""
    return Usage(t.usage.app_ns, time.thread_time_ns())


def sample_max_rss_locked(tg: ThreadGroup) -> int:
    """Records the current resident size of tg's address space in its
    high-water mark and returns the mark, in KiB.

    Unlike Linux, which tracks the peak as pages come and go, the peak is
    only sampled when someone asks and when the process exits.

    Preconditions: the TaskSet's mu is held; tg has a live thread or none.
    """
    dead = tg.dead_usage
    if tg.tasks:
        rss = tg.tasks[0].mm.resident_bytes() >> 10
        dead.max_rss_kb = max(dead.max_rss_kb, rss)
    return dead.max_rss_kb


def thread_group_usage_locked(tg: ThreadGroup) -> Usage:
    """Returns the usage of a whole process: its live threads and the ones
    that exited (RUSAGE_SELF).

    Preconditions: the TaskSet's mu is held (so no thread exits meanwhile).
    """
    sample_max_rss_locked(tg)
    total = tg.dead_usage.copy()
    for t in tg.tasks:
        total.add(task_usage(t))
    return total
