"""Clocks and sleeping: clock_gettime(2), clock_getres(2), gettimeofday(2),
time(2), nanosleep(2), clock_nanosleep(2), restart_syscall(2).

Wall clocks are the host's. CPU-time clocks (CLOCK_PROCESS_CPUTIME_ID,
CLOCK_THREAD_CPUTIME_ID and the ids of clock_getcpuclockid(3) and
pthread_getcpuclockid(3)) measure application time (cputime.py). The
alarm clocks behave as on a host without a real-time clock device, which is
what the sandbox offers: EINVAL to read, EOPNOTSUPP to sleep or arm.

An interrupted relative sleep returns ERESTART_RESTARTBLOCK with a restart
block that sleeps until the original expiry, so that a signal with no
handler (or a stop and SIGCONT) does not lengthen it; an interrupted
absolute sleep returns ERESTARTNOHAND and is simply restarted.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.cputime import CPUClock, is_cpu_clock, lookup_cpu_clock
from pkg.sentry.kernel.timers import CPUTimer
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_TIMESPEC = struct.Struct("<qq")
_TIMEVAL = struct.Struct("<qq")

_HOST_CLOCKS = {
    T.CLOCK_REALTIME: time.CLOCK_REALTIME,
    T.CLOCK_MONOTONIC: time.CLOCK_MONOTONIC,
    T.CLOCK_MONOTONIC_RAW: time.CLOCK_MONOTONIC_RAW,
    T.CLOCK_REALTIME_COARSE: T.CLOCK_REALTIME_COARSE,
    T.CLOCK_MONOTONIC_COARSE: T.CLOCK_MONOTONIC_COARSE,
    T.CLOCK_BOOTTIME: time.CLOCK_BOOTTIME,
    T.CLOCK_TAI: time.CLOCK_TAI,
}

# Clocks that can be slept on and have timers (hrtimer bases).
TIMER_CLOCKS = frozenset(
    (T.CLOCK_REALTIME, T.CLOCK_MONOTONIC, T.CLOCK_BOOTTIME, T.CLOCK_TAI)
)
_ALARM_CLOCKS = (T.CLOCK_REALTIME_ALARM, T.CLOCK_BOOTTIME_ALARM)


def clock_now_ns(t: Task, clock: int) -> int:
    """Returns the current value of a clock in nanoseconds.

    Raises:
        SyscallError: EINVAL for an unknown clock.
    """
    host = _HOST_CLOCKS.get(clock)
    if host is not None:
        return time.clock_gettime_ns(host)
    if is_cpu_clock(clock):
        return lookup_cpu_clock(t, clock).now_ns()
    raise SyscallError(errno.EINVAL)


def to_monotonic_ns(t: Task, clock: int, abs_ns: int) -> int:
    """Converts an absolute time on a wall clock to the monotonic clock on
    which the sentry waits. Unlike Linux, a later change of the host's
    CLOCK_REALTIME does not move a deadline already converted."""
    if clock == T.CLOCK_MONOTONIC:
        return abs_ns
    return time.monotonic_ns() + (abs_ns - clock_now_ns(t, clock))


def read_timespec(t: Task, addr: int) -> int:
    """Reads a struct timespec and returns it in nanoseconds.

    Raises:
        SyscallError: EFAULT, or EINVAL if tv_nsec is out of range or tv_sec
            negative.
    """
    sec, nsec = _TIMESPEC.unpack(t.copy_in(addr, 16))
    if not 0 <= nsec < T.NSEC_PER_SEC or sec < 0:
        raise SyscallError(errno.EINVAL)
    return sec * T.NSEC_PER_SEC + nsec


def write_timespec(t: Task, addr: int, ns: int) -> None:
    """Writes nanoseconds as a struct timespec."""
    t.copy_out(addr, _TIMESPEC.pack(*divmod(ns, T.NSEC_PER_SEC)))


def sys_clock_gettime(t: Task, args: Args) -> int:
    """clock_gettime(2)."""
    write_timespec(t, args[1], clock_now_ns(t, s32(args[0])))
    return 0


def sys_clock_getres(t: Task, args: Args) -> int:
    """clock_getres(2)."""
    clock = s32(args[0])
    clock_now_ns(t, clock)
    if args[1]:
        coarse = clock in (T.CLOCK_REALTIME_COARSE, T.CLOCK_MONOTONIC_COARSE)
        write_timespec(t, args[1], T.TICK_NSEC if coarse else T.HRTIMER_RESOLUTION_NS)
    return 0


def sys_clock_settime(t: Task, args: Args) -> int:
    """clock_settime(2). Unlike Linux, even CAP_SYS_TIME cannot set the
    sandbox's clocks, which are the host's: EPERM for CLOCK_REALTIME."""
    clock = s32(args[0])
    read_timespec(t, args[1])
    if clock != T.CLOCK_REALTIME:
        raise SyscallError(errno.EINVAL)
    raise SyscallError(errno.EPERM)


def sys_gettimeofday(t: Task, args: Args) -> int:
    """gettimeofday(2); the timezone is always UTC, as in a container."""
    if args[0]:
        ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        sec, nsec = divmod(ns, T.NSEC_PER_SEC)
        t.copy_out(args[0], _TIMEVAL.pack(sec, nsec // T.NSEC_PER_USEC))
    if args[1]:
        t.copy_out(args[1], struct.pack("<ii", 0, 0))
    return 0


def sys_time(t: Task, args: Args) -> int:
    """time(2)."""
    now = time.clock_gettime_ns(time.CLOCK_REALTIME) // T.NSEC_PER_SEC
    if args[0]:
        t.mm.write_i64(args[0], now)
    return now


# Sleeping.


def _sleep_until(t: Task, deadline_ns: int, rem_addr: int, absolute: bool) -> int:
    """Sleeps until a monotonic deadline (do_nanosleep)."""
    try:
        t.sleep_until(deadline_ns / T.NSEC_PER_SEC)
    except SyscallError as e:
        if e.errno != errno.ERESTARTSYS:
            raise
        if absolute:
            raise SyscallError(errno.ERESTARTNOHAND) from None
        left = deadline_ns - time.monotonic_ns()
        if left <= 0:
            return 0
        if rem_addr:
            write_timespec(t, rem_addr, left)
        t.restart_block = lambda t: _sleep_until(t, deadline_ns, rem_addr, False)
        raise SyscallError(errno.ERESTART_RESTARTBLOCK) from None
    return 0


class _CPUSleeper(CPUTimer):
    """Wakes a task sleeping until a CPU-time clock reaches a value."""

    __slots__ = ("clock", "done", "target", "task")

    def __init__(self, task: Task, clock: CPUClock, target: int) -> None:
        self.task = task
        self.clock = clock
        self.target = target
        self.done = False

    def cpu_tick(self) -> None:
        if self.clock.now_ns() >= self.target:
            self.done = True
            self.task.kernel.cpu_timers.remove(self)
            self.task.wake()


def _cpu_sleep(
    t: Task, clock: CPUClock, target: int, rem_addr: int, absolute: bool
) -> int:
    """Sleeps until a CPU-time clock reaches target (posix_cpu_nsleep)."""
    if clock.now_ns() >= target:
        return 0
    sleeper = _CPUSleeper(t, clock, target)
    ticker = t.kernel.cpu_timers
    ticker.add(sleeper)
    try:
        while not sleeper.done:
            t.block()
    except SyscallError as e:
        if e.errno != errno.ERESTARTSYS:
            raise
        if absolute:
            raise SyscallError(errno.ERESTARTNOHAND) from None
        left = target - clock.now_ns()
        if left <= 0:
            return 0
        if rem_addr:
            write_timespec(t, rem_addr, left)
        t.restart_block = lambda t: _cpu_sleep(t, clock, target, rem_addr, False)
        raise SyscallError(errno.ERESTART_RESTARTBLOCK) from None
    finally:
        ticker.remove(sleeper)
    return 0


def sys_nanosleep(t: Task, args: Args) -> int:
    """nanosleep(2)."""
    ns = read_timespec(t, args[0])
    return _sleep_until(t, time.monotonic_ns() + ns, args[1], False)


def sys_clock_nanosleep(t: Task, args: Args) -> int:
    """clock_nanosleep(2): errors are returned, not set in errno."""
    clock, flags = s32(args[0]), s32(args[1])
    absolute = bool(flags & T.TIMER_ABSTIME)
    rem_addr = 0 if absolute else args[3]
    if clock in TIMER_CLOCKS:
        ns = read_timespec(t, args[2])
        if absolute:
            deadline = to_monotonic_ns(t, clock, ns)
        else:
            deadline = time.monotonic_ns() + ns
        return _sleep_until(t, deadline, rem_addr, absolute)
    if clock == T.CLOCK_THREAD_CPUTIME_ID or clock in _HOST_CLOCKS:
        raise SyscallError(errno.EOPNOTSUPP)
    if clock in _ALARM_CLOCKS:
        raise SyscallError(errno.EOPNOTSUPP)
    if clock < 0 and clock & T.CPUCLOCK_CLOCK_MASK == T.CLOCKFD:
        raise SyscallError(errno.EOPNOTSUPP)
    if not is_cpu_clock(clock):
        raise SyscallError(errno.EINVAL)
    if clock < 0 and clock & T.CPUCLOCK_PERTHREAD_MASK:
        raise SyscallError(errno.EINVAL)
    cpu = lookup_cpu_clock(t, clock)
    ns = read_timespec(t, args[2])
    target = ns if absolute else cpu.now_ns() + ns
    return _cpu_sleep(t, cpu, target, rem_addr, absolute)


def sys_restart_syscall(t: Task, args: Args) -> int:
    """restart_syscall(2): continues a call interrupted with
    ERESTART_RESTARTBLOCK; EINTR when there is none to continue."""
    fn = t.restart_block
    t.restart_block = None
    if fn is None:
        raise SyscallError(errno.EINTR)
    return fn(t)


ENTRIES = [
    full(N.SYS_nanosleep, "nanosleep", sys_nanosleep),
    full(N.SYS_gettimeofday, "gettimeofday", sys_gettimeofday),
    full(N.SYS_time, "time", sys_time),
    full(N.SYS_restart_syscall, "restart_syscall", sys_restart_syscall),
    partial(
        N.SYS_clock_settime,
        "clock_settime",
        sys_clock_settime,
        "the sandbox's clocks are the host's: setting CLOCK_REALTIME is EPERM",
    ),
    full(N.SYS_clock_gettime, "clock_gettime", sys_clock_gettime),
    full(N.SYS_clock_getres, "clock_getres", sys_clock_getres),
    full(N.SYS_clock_nanosleep, "clock_nanosleep", sys_clock_nanosleep),
]
