"""Scheduler and I/O statistics that /proc reports: load averages, context
switch and fork counts, and per-task I/O accounting.

Linux keeps these in the scheduler (kernel/sched/loadavg.c, the nvcsw and
nivcsw counters of task_struct, total_forks) and in task_io_accounting. The
sentry has no scheduler of its own, so it counts the events that stand for
a switch:

- a voluntary switch is a wait: every Task.block (and the killable and
  stopped waits built on the same wake descriptor) gives up the CPU;
- a nonvoluntary switch is an application run that the sentry preempted
  (the platform returned EVENT_INTERRUPT: a signal, a stop, a timer tick).

Only the task's own thread writes its counters; other threads read them, a
lost update being impossible since no two threads write the same one. The
kernel-wide counters (forks, switches of exited tasks) are written under
the TaskSet lock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

# The load average's fixed point (FSHIFT, FIXED_1) and the per-sample decay
# factors of the 1, 5 and 15 minute averages, 2048/exp(5s/1min) and so on,
# as include/linux/sched/loadavg.h defines them.
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
_EXP = (1884, 2014, 2037)
# Seconds between two samples (LOAD_FREQ is 5 s plus a tick).
LOAD_FREQ_SECS = 5.0


class TaskIO:
    """TaskIO is one task's (or a process's exited threads') I/O counters,
    /proc/pid/io's rchar, wchar, syscr and syscw."""

    __slots__ = ("rchar", "syscr", "syscw", "wchar")

    def __init__(self) -> None:
        self.rchar = 0
        self.wchar = 0
        self.syscr = 0
        self.syscw = 0

    def add(self, other: TaskIO) -> None:
        """Adds other's counters to these."""
        self.rchar += other.rchar
        self.wchar += other.wchar
        self.syscr += other.syscr
        self.syscw += other.syscw


def account_read(t: Task, n: int) -> None:
    """Counts one read system call that moved n bytes (n <= 0: none)."""
    io = t.ioac
    io.syscr += 1
    if n > 0:
        io.rchar += n


def account_write(t: Task, n: int) -> None:
    """Counts one write system call that moved n bytes (n <= 0: none)."""
    io = t.ioac
    io.syscw += 1
    if n > 0:
        io.wchar += n


def account_copy(t: Task, n: int) -> None:
    """Counts a transfer between two files (sendfile, copy_file_range) as
    one read and one write of n bytes each, as Linux's do_sendfile and
    vfs_copy_file_range do."""
    account_read(t, n)
    account_write(t, n)


class LoadAverage:
    """LoadAverage is the exponentially decayed number of runnable tasks
    over 1, 5 and 15 minutes, in FSHIFT fixed point (calc_load)."""

    __slots__ = ("avenrun",)

    def __init__(self) -> None:
        self.avenrun = (0, 0, 0)

    def sample(self, active: int) -> None:
        """Folds in one sample of `active` runnable tasks."""
        active_fixed = active * FIXED_1
        out = []
        for load, exp in zip(self.avenrun, _EXP, strict=True):
            value = load * exp + active_fixed * (FIXED_1 - exp)
            # Rounds up while the load grows, as calc_load does.
            if active_fixed >= load:
                value += FIXED_1 - 1
            out.append(value >> FSHIFT)
        self.avenrun = (out[0], out[1], out[2])

    def text(self) -> str:
        """Returns the three averages as /proc/loadavg prints them."""
        parts = []
        for load in self.avenrun:
            # Rounded to hundredths (loadavg_proc_show adds FIXED_1/200).
            x = load + FIXED_1 // 200
            whole = x >> FSHIFT
            frac = ((x & (FIXED_1 - 1)) * 100) >> FSHIFT
            parts.append(f"{whole}.{frac:02d}")
        return " ".join(parts)


def runnable_tasks(kernel: Kernel) -> list[Task]:
    """Returns the live tasks that are not waiting: running application
    code or the sentry on their behalf."""
    return [t for t in kernel.tasks.live_tasks() if not t.cpu.waiting]


class KernelStats:
    """KernelStats holds the kernel-wide counters and samples the load.

    Attributes:
        forks: tasks created since boot, threads included (total_forks).
        exited_switches: context switches of the tasks that have exited.
        load: the load averages.
    """

    __slots__ = ("_mu", "_started", "_stop", "exited_switches", "forks", "load")

    def __init__(self) -> None:
        self.forks = 0
        self.exited_switches = 0
        self.load = LoadAverage()
        self._stop = threading.Event()
        self._mu = threading.Lock()
        self._started = False

    def start_sampling(self, kernel: Kernel) -> None:
        """Starts sampling the load every LOAD_FREQ_SECS until stop(), once
        (the kernel calls it when it starts a task, so that kernels that
        never run anything keep no thread)."""
        with self._mu:
            if self._started:
                return
            self._started = True
        threading.Thread(
            target=self._sample_loop, args=(kernel,), name="kernel-loadavg", daemon=True
        ).start()

    def stop(self) -> None:
        """Ends the sampling thread."""
        self._stop.set()

    def _sample_loop(self, kernel: Kernel) -> None:
        while not self._stop.wait(LOAD_FREQ_SECS):
            self.load.sample(len(runnable_tasks(kernel)))

    def total_switches(self, kernel: Kernel) -> int:
        """Returns the context switches of every task since boot."""
        total = self.exited_switches
        for t in kernel.tasks.live_tasks():
            total += t.cpu.nvcsw + t.cpu.nivcsw
        return total
