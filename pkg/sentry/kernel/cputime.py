"""CPU-time accounting and the CPU-time clocks of threads and processes.

Application code runs in platform stub threads, which are host threads of
other host processes: the host only lets a process read the CPU clock of its
own threads (clock_gettime on a thread clock id of a foreign thread fails
with EINVAL) or of another process as a whole, which here would mix the
threads of every task sharing the address space. So, as gVisor does, the
sentry measures time itself:

- user time is the wall-clock time a task spends inside its platform
  Context's switch, i.e. running application code (plus the platform's
  round trip, which is what Linux would charge as system time at entry);
- system time is the CPU time of the task's own host thread in the sentry,
  read through that thread's CPU clock, which needs no file and works from
  any sentry thread.

A process's clocks are the sum over its live threads plus what its exited
threads accumulated (ThreadGroup.exited_cputime).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

_THREAD_SCHED = T.CPUCLOCK_PERTHREAD_MASK | T.CPUCLOCK_SCHED


class TaskCPU:
    """TaskCPU is the CPU time of one task.

    `run` is (user time accumulated before the current switch, monotonic
    start of the current switch or 0), replaced as one tuple so that another
    thread never reads a torn pair. Only the task's own thread writes it.
    """

    __slots__ = ("final_sys_ns", "host_tid", "nivcsw", "nvcsw", "run", "waiting")

    def __init__(self) -> None:
        self.run: tuple[int, int] = (0, 0)
        # Context switches (sched_stats.py): waits, and preempted runs of
        # application code.
        self.nvcsw = 0
        self.nivcsw = 0
        # The task is asleep in a wait: not runnable for the load average.
        self.waiting = False
        # The native id of the task's host thread once it runs, for its
        # CPU clock; 0 before and after.
        self.host_tid = 0
        # The host thread's CPU time when it stopped being readable.
        self.final_sys_ns = 0

    def start(self) -> None:
        """Records the task's host thread; called on that thread."""
        self.host_tid = threading.get_native_id()

    def stop(self) -> None:
        """Freezes system time; called on the task's thread as it exits."""
        self.final_sys_ns = self.sys_ns()
        self.host_tid = 0

    def user_ns(self) -> int:
        """Returns the user time so far, including a switch in progress."""
        base, start = self.run
        if start:
            return base + max(0, time.monotonic_ns() - start)
        return base

    def sys_ns(self) -> int:
        """Returns the sentry CPU time spent on the task's behalf."""
        tid = self.host_tid
        if not tid:
            return self.final_sys_ns
        try:
            return time.clock_gettime_ns(((~tid) << 3) | _THREAD_SCHED)
        except OSError:
            return self.final_sys_ns


def task_cputime(t: Task) -> tuple[int, int]:
    """Returns (user, system) nanoseconds of one task."""
    return t.cpu.user_ns(), t.cpu.sys_ns()


def thread_group_cputime(tg: ThreadGroup) -> tuple[int, int]:
    """Returns (user, system) nanoseconds of a process: its live threads
    and those that have exited."""
    user, system = tg.exited_cputime
    for task in list(tg.tasks):
        u, s = task_cputime(task)
        user += u
        system += s
    return user, system


def account_exit(t: Task) -> None:
    """Adds an exiting task's times to its process's exited_cputime.

    Called on the task's own thread when it leaves its thread group.
    """
    t.cpu.stop()
    u, s = task_cputime(t)
    eu, es = t.tg.exited_cputime
    t.tg.exited_cputime = (eu + u, es + s)


def cpu_clock_value(which: int, user: int, system: int) -> int:
    """Returns the value of a CPUCLOCK_* clock from user and system time."""
    if which == T.CPUCLOCK_VIRT:
        return user
    return user + system


class CPUClock:
    """CPUClock names one CPU-time clock: of a task or of a process.

    Attributes:
        task: the thread whose clock it is, or None for a process clock.
        tg: the process (for a thread clock, the thread's process).
        which: CPUCLOCK_PROF, CPUCLOCK_VIRT or CPUCLOCK_SCHED.
    """

    __slots__ = ("task", "tg", "which")

    def __init__(self, task: Task | None, tg: ThreadGroup, which: int) -> None:
        self.task = task
        self.tg = tg
        self.which = which

    def now_ns(self) -> int:
        """Returns the clock's current value."""
        if self.task is not None:
            user, system = task_cputime(self.task)
        else:
            user, system = thread_group_cputime(self.tg)
        return cpu_clock_value(self.which, user, system)


def is_cpu_clock(clock: int) -> bool:
    """Reports whether a clock id names a CPU-time clock."""
    return clock < 0 or clock in (
        T.CLOCK_PROCESS_CPUTIME_ID,
        T.CLOCK_THREAD_CPUTIME_ID,
    )


def lookup_cpu_clock(t: Task, clock: int, for_timer: bool = False) -> CPUClock:
    """Resolves a CPU-time clock id as seen by t (posix_cpu_clock_get).

    A thread clock must name a thread of t's own process; a process clock
    names any process by its id (for a timer, by its leader's id only).

    Raises:
        SyscallError: EINVAL for a malformed id or a target not found.
    """
    if clock == T.CLOCK_PROCESS_CPUTIME_ID:
        return CPUClock(None, t.tg, T.CPUCLOCK_SCHED)
    if clock == T.CLOCK_THREAD_CPUTIME_ID:
        return CPUClock(t, t.tg, T.CPUCLOCK_SCHED)
    which = clock & T.CPUCLOCK_CLOCK_MASK
    if clock >= 0 or which >= T.CPUCLOCK_MAX:
        raise SyscallError(errno.EINVAL)
    pid = ~(clock >> 3)
    thread = bool(clock & T.CPUCLOCK_PERTHREAD_MASK)
    tasks = t.kernel.tasks
    if pid == 0:
        return CPUClock(t if thread else None, t.tg, which)
    target = tasks.tasks.get(pid)
    if target is None:
        raise SyscallError(errno.EINVAL)
    if thread:
        if target.tg is not t.tg:
            raise SyscallError(errno.EINVAL)
        return CPUClock(target, target.tg, which)
    if target.tg.leader is not target and (for_timer or target is not t):
        raise SyscallError(errno.EINVAL)
    return CPUClock(None, target.tg, which)
