"""Clocks and sleeping: clock_gettime(2), clock_getres(2), gettimeofday(2),
time(2), nanosleep(2), clock_nanosleep(2)."""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_TIMESPEC = struct.Struct("<qq")

_HOST_CLOCKS = {
    T.CLOCK_REALTIME: time.CLOCK_REALTIME,
    T.CLOCK_MONOTONIC: time.CLOCK_MONOTONIC,
    T.CLOCK_MONOTONIC_RAW: time.CLOCK_MONOTONIC_RAW,
    T.CLOCK_REALTIME_COARSE: 5,
    T.CLOCK_MONOTONIC_COARSE: 6,
    T.CLOCK_BOOTTIME: time.CLOCK_BOOTTIME,
    T.CLOCK_TAI: time.CLOCK_TAI,
}


def clock_now_ns(t: Task, clock: int) -> int:
    """Returns the current value of a clock in nanoseconds.

    Raises:
        SyscallError: EINVAL for an unknown clock.
    """
    host = _HOST_CLOCKS.get(clock)
    if host is not None:
        return time.clock_gettime_ns(host)
    if clock == T.CLOCK_PROCESS_CPUTIME_ID:
        # TODO(#4): CPU time of the application, not of the sentry.
        return time.clock_gettime_ns(time.CLOCK_PROCESS_CPUTIME_ID)
    if clock == T.CLOCK_THREAD_CPUTIME_ID:
        return time.clock_gettime_ns(time.CLOCK_THREAD_CPUTIME_ID)
    raise SyscallError(errno.EINVAL)


def read_timespec(t: Task, addr: int) -> int:
    """Reads a struct timespec and returns it in nanoseconds.

    Raises:
        SyscallError: EINVAL if tv_nsec is out of range or tv_sec negative.
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
        write_timespec(t, args[1], 4_000_000 if coarse else 1)
    return 0


def sys_gettimeofday(t: Task, args: Args) -> int:
    """gettimeofday(2); the timezone is always UTC, as in a container."""
    if args[0]:
        ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        sec, nsec = divmod(ns, T.NSEC_PER_SEC)
        t.copy_out(args[0], struct.pack("<qq", sec, nsec // 1000))
    if args[1]:
        t.copy_out(args[1], struct.pack("<ii", 0, 0))
    return 0


def sys_time(t: Task, args: Args) -> int:
    """time(2)."""
    now = time.clock_gettime_ns(time.CLOCK_REALTIME) // T.NSEC_PER_SEC
    if args[0]:
        t.mm.write_i64(args[0], now)
    return now


def _sleep(t: Task, clock: int, ns: int, absolute: bool, rem_addr: int) -> int:
    now = clock_now_ns(t, clock)
    wait_ns = ns - now if absolute else ns
    deadline = time.monotonic() + max(wait_ns, 0) / T.NSEC_PER_SEC
    try:
        t.sleep_until(deadline)
    except SyscallError as e:
        if e.errno != errno.ERESTARTSYS:
            raise
        if absolute:
            raise SyscallError(errno.ERESTARTNOHAND) from None
        left = int((deadline - time.monotonic()) * T.NSEC_PER_SEC)
        if rem_addr:
            write_timespec(t, rem_addr, max(left, 0))
        # TODO(#4): restart_syscall with the remaining time
        # (ERESTART_RESTARTBLOCK); until then a restarted sleep is EINTR.
        raise SyscallError(errno.EINTR) from None
    return 0


def sys_nanosleep(t: Task, args: Args) -> int:
    """nanosleep(2)."""
    return _sleep(t, T.CLOCK_MONOTONIC, read_timespec(t, args[0]), False, args[1])


def sys_clock_nanosleep(t: Task, args: Args) -> int:
    """clock_nanosleep(2): errors are returned, not set in errno."""
    clock, flags = s32(args[0]), s32(args[1])
    if clock == T.CLOCK_THREAD_CPUTIME_ID:
        # thread_cpu_nsleep: a thread cannot sleep on its own CPU clock.
        raise SyscallError(errno.EOPNOTSUPP)
    ns = read_timespec(t, args[2])
    absolute = bool(flags & T.TIMER_ABSTIME)
    return _sleep(t, clock, ns, absolute, 0 if absolute else args[3])


ENTRIES = [
    full(N.SYS_nanosleep, "nanosleep", sys_nanosleep),
    full(N.SYS_gettimeofday, "gettimeofday", sys_gettimeofday),
    full(N.SYS_time, "time", sys_time),
    full(N.SYS_clock_gettime, "clock_gettime", sys_clock_gettime),
    full(N.SYS_clock_getres, "clock_getres", sys_clock_getres),
    full(N.SYS_clock_nanosleep, "clock_nanosleep", sys_clock_nanosleep),
]
