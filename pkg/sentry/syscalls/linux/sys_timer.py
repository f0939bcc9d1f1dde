"""Interval and POSIX timers: alarm(2), getitimer(2), setitimer(2),
timer_create(2), timer_settime(2), timer_gettime(2), timer_getoverrun(2),
timer_delete(2). The timers themselves live in kernel/timers.py."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.cputime import is_cpu_clock, lookup_cpu_clock
from pkg.sentry.kernel.timers import PosixTimer
from pkg.sentry.syscalls.linux.sys_time import TIMER_CLOCKS, to_monotonic_ns
from pkg.sentry.syscalls.syscall import Args, full, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_ITIMERVAL = struct.Struct("<qqqq")  # it_interval, it_value as timevals
_ITIMERSPEC = struct.Struct("<qqqq")  # it_interval, it_value as timespecs
_SIGEVENT = struct.Struct("<Qiii")  # sigev_value, signo, notify, tid
_USEC = T.NSEC_PER_USEC


# Interval timers.


def _read_itimerval(t: Task, addr: int) -> tuple[int, int]:
    """Returns (value ns, interval ns) of a struct itimerval."""
    i_sec, i_usec, v_sec, v_usec = _ITIMERVAL.unpack(t.copy_in(addr, 32))
    for sec, usec in ((i_sec, i_usec), (v_sec, v_usec)):
        if sec < 0 or not 0 <= usec < 1_000_000:
            raise SyscallError(errno.EINVAL)
    return (
        v_sec * T.NSEC_PER_SEC + v_usec * _USEC,
        i_sec * T.NSEC_PER_SEC + i_usec * _USEC,
    )


def _timeval(ns: int) -> tuple[int, int]:
    # Rounded up, so that an armed timer never reads as disarmed.
    usec = -(-ns // _USEC)
    return divmod(usec, 1_000_000)


def _write_itimerval(t: Task, addr: int, value: int, interval: int) -> None:
    t.copy_out(addr, _ITIMERVAL.pack(*_timeval(interval), *_timeval(value)))


def _check_which(which: int) -> None:
    if which not in (T.ITIMER_REAL, T.ITIMER_VIRTUAL, T.ITIMER_PROF):
        raise SyscallError(errno.EINVAL)


def sys_getitimer(t: Task, args: Args) -> int:
    """getitimer(2)."""
    which = s32(args[0])
    _check_which(which)
    value, interval = t.tg.timers.itimer(which).get()
    _write_itimerval(t, args[1], value, interval)
    return 0


def sys_setitimer(t: Task, args: Args) -> int:
    """setitimer(2). A null new value disarms the timer, as Linux allows."""
    which = s32(args[0])
    value, interval = _read_itimerval(t, args[1]) if args[1] else (0, 0)
    _check_which(which)
    old_value, old_interval = t.tg.timers.itimer(which).set(value, interval)
    if args[2]:
        _write_itimerval(t, args[2], old_value, old_interval)
    return 0


def sys_alarm(t: Task, args: Args) -> int:
    """alarm(2): returns the seconds left of the previous alarm, rounded to
    the nearest second but never 0 for an armed one (alarm_setitimer)."""
    seconds = u32(args[0])
    old, _interval = t.tg.timers.real.set(seconds * T.NSEC_PER_SEC, 0)
    sec, nsec = divmod(old, T.NSEC_PER_SEC)
    usec = -(-nsec // _USEC)
    if usec >= 1_000_000:
        sec, usec = sec + 1, 0
    if (not sec and usec) or usec >= 500_000:
        sec += 1
    return sec


# POSIX timers.


def _timer_clock_check(t: Task, clock: int) -> None:
    """Validates a clock for timer_create (clockid_to_kclock)."""
    if clock in TIMER_CLOCKS or clock in (
        T.CLOCK_PROCESS_CPUTIME_ID,
        T.CLOCK_THREAD_CPUTIME_ID,
    ):
        return
    if clock in (
        T.CLOCK_MONOTONIC_RAW,
        T.CLOCK_REALTIME_COARSE,
        T.CLOCK_MONOTONIC_COARSE,
        T.CLOCK_REALTIME_ALARM,
        T.CLOCK_BOOTTIME_ALARM,
    ):
        # No hrtimer base (or, for the alarm clocks, no RTC device).
        raise SyscallError(errno.EOPNOTSUPP)
    if clock < 0 and clock & T.CPUCLOCK_CLOCK_MASK == T.CLOCKFD:
        raise SyscallError(errno.EOPNOTSUPP)
    if not is_cpu_clock(clock):
        raise SyscallError(errno.EINVAL)


def sys_timer_create(t: Task, args: Args) -> int:
    """timer_create(2). SIGEV_THREAD is libc's: the kernel treats it as
    SIGEV_SIGNAL, as Linux does."""
    clock, sev_addr, id_addr = s32(args[0]), args[1], args[2]
    _timer_clock_check(t, clock)
    if sev_addr:
        sigval, signo, notify, tid = _SIGEVENT.unpack(t.copy_in(sev_addr, 20))
    else:
        sigval, signo, notify, tid = None, S.SIGALRM, T.SIGEV_SIGNAL, 0
    target = None
    if notify == T.SIGEV_SIGNAL | T.SIGEV_THREAD_ID:
        target = t.kernel.tasks.tasks.get(tid)
        if target is None or target.tg is not t.tg:
            raise SyscallError(errno.EINVAL)
    elif notify not in (T.SIGEV_SIGNAL, T.SIGEV_THREAD, T.SIGEV_NONE):
        raise SyscallError(errno.EINVAL)
    if notify != T.SIGEV_NONE and not 1 <= signo <= S.SIGRTMAX:
        raise SyscallError(errno.EINVAL)
    cpu = lookup_cpu_clock(t, clock, for_timer=True) if is_cpu_clock(clock) else None

    def make(timer_id: int) -> PosixTimer:
        return PosixTimer(
            t.tg.timers,
            timer_id,
            clock,
            cpu,
            notify,
            signo,
            timer_id if sigval is None else sigval,
            target,
        )

    timer = t.tg.timers.add_posix(make)
    try:
        t.mm.write_i32(id_addr, timer.id)
    except SyscallError:
        t.tg.timers.delete_posix(timer.id)
        raise
    return 0


def _get_timer(t: Task, timer_id: int) -> PosixTimer:
    timer = t.tg.timers.get_posix(timer_id)
    if timer is None:
        raise SyscallError(errno.EINVAL)
    return timer


def _write_itimerspec(t: Task, addr: int, value: int, interval: int) -> None:
    t.copy_out(
        addr,
        _ITIMERSPEC.pack(
            *divmod(interval, T.NSEC_PER_SEC), *divmod(value, T.NSEC_PER_SEC)
        ),
    )


def sys_timer_settime(t: Task, args: Args) -> int:
    """timer_settime(2)."""
    timer_id, flags, new_addr, old_addr = s32(args[0]), s32(args[1]), args[2], args[3]
    i_sec, i_nsec, v_sec, v_nsec = _ITIMERSPEC.unpack(t.copy_in(new_addr, 32))
    for sec, nsec in ((i_sec, i_nsec), (v_sec, v_nsec)):
        if sec < 0 or not 0 <= nsec < T.NSEC_PER_SEC:
            raise SyscallError(errno.EINVAL)
    timer = _get_timer(t, timer_id)
    value = v_sec * T.NSEC_PER_SEC + v_nsec
    interval = i_sec * T.NSEC_PER_SEC + i_nsec
    absolute = bool(flags & T.TIMER_ABSTIME)
    if absolute and value and timer.cpu_clock is None:
        value = to_monotonic_ns(t, timer.clock, value)
        if value <= 0:
            value = 1
    old_value, old_interval = timer.set(value, interval, absolute)
    if old_addr:
        _write_itimerspec(t, old_addr, old_value, old_interval)
    return 0


def sys_timer_gettime(t: Task, args: Args) -> int:
    """timer_gettime(2)."""
    timer = _get_timer(t, s32(args[0]))
    value, interval = timer.get()
    _write_itimerspec(t, args[1], value, interval)
    return 0


def sys_timer_getoverrun(t: Task, args: Args) -> int:
    """timer_getoverrun(2)."""
    return _get_timer(t, s32(args[0])).overrun_last


def sys_timer_delete(t: Task, args: Args) -> int:
    """timer_delete(2)."""
    if not t.tg.timers.delete_posix(s32(args[0])):
        raise SyscallError(errno.EINVAL)
    return 0


ENTRIES = [
    full(N.SYS_getitimer, "getitimer", sys_getitimer),
    full(N.SYS_alarm, "alarm", sys_alarm),
    full(N.SYS_setitimer, "setitimer", sys_setitimer),
    full(N.SYS_timer_create, "timer_create", sys_timer_create),
    full(N.SYS_timer_settime, "timer_settime", sys_timer_settime),
    full(N.SYS_timer_gettime, "timer_gettime", sys_timer_gettime),
    full(N.SYS_timer_getoverrun, "timer_getoverrun", sys_timer_getoverrun),
    full(N.SYS_timer_delete, "timer_delete", sys_timer_delete),
]
