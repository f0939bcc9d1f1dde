"""Resource usage of tasks and processes (getrusage(2), times(2), wait4(2)).

CPU times come from cputime.py: a task's user time is the wall time it
spends running application code, its system time the CPU time of its host
thread in the sentry, and a process adds what its exited threads used
(ThreadGroup.exited_cputime). This module adds the rest of struct rusage
that the sentry tracks: the resident size high-water mark, and the usage of
reaped children, which accumulates in their parent (RUSAGE_CHILDREN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.sentry.kernel.cputime import task_cputime, thread_group_cputime

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
    # Voluntary and involuntary context switches (ru_nvcsw, ru_nivcsw;
    # sched_stats.py).
    nvcsw: int = 0
    nivcsw: int = 0

    def add(self, other: Usage) -> None:
        """Adds other's times and counts (and keeps the larger of the two
        maxrss)."""
        self.utime_ns += other.utime_ns
        self.stime_ns += other.stime_ns
        self.max_rss_kb = max(self.max_rss_kb, other.max_rss_kb)
        self.nvcsw += other.nvcsw
        self.nivcsw += other.nivcsw

    def copy(self) -> Usage:
        """Returns an independent copy."""
        return Usage(
            self.utime_ns, self.stime_ns, self.max_rss_kb, self.nvcsw, self.nivcsw
        )


def ns_to_ticks(ns: int) -> int:
    """Converts nanoseconds to clock ticks (clock_t)."""
    return ns // _NS_PER_TICK


def sample_max_rss_locked(tg: ThreadGroup) -> int:
    """Records the current resident size of tg's address space in its
    high-water mark and returns the mark, in KiB.

    Unlike Linux, which tracks the peak as pages come and go, the peak is
    only sampled when someone asks and when the process exits.

    Preconditions: the TaskSet's mu is held.
    """
    if tg.tasks:
        rss = tg.tasks[0].mm.resident_bytes() >> 10
        tg.max_rss_kb = max(tg.max_rss_kb, rss)
    return tg.max_rss_kb


def task_usage(t: Task) -> Usage:
    """Returns the usage of one live task (RUSAGE_THREAD), maxrss aside."""
    return Usage(*task_cputime(t), 0, t.cpu.nvcsw, t.cpu.nivcsw)


def thread_group_usage_locked(tg: ThreadGroup) -> Usage:
    """Returns the usage of a whole process: its live threads and the ones
    that exited (RUSAGE_SELF).

    Preconditions: the TaskSet's mu is held (so no thread exits meanwhile).
    """
    nvcsw, nivcsw = tg.exited_switches
    for t in tg.tasks:
        nvcsw += t.cpu.nvcsw
        nivcsw += t.cpu.nivcsw
    return Usage(*thread_group_cputime(tg), sample_max_rss_locked(tg), nvcsw, nivcsw)


def exited_usage(tg: ThreadGroup) -> Usage:
    """Returns the usage of a process whose threads have all exited, with
    that of its reaped children (what wait4 reports)."""
    usage = Usage(*tg.exited_cputime, tg.max_rss_kb, *tg.exited_switches)
    usage.add(tg.child_usage)
    return usage
