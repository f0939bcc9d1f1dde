"""timerfd_create(2), timerfd_settime(2) and timerfd_gettime(2). The file
is pkg/sentry/fsimpl/timerfd."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.abi.linux import timerfd as TFD
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.timerfd.timerfd import TimerFD, new_timerfd
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.linux.sys_time import to_monotonic_ns
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_ITIMERSPEC = struct.Struct("<qqqq")  # it_interval, it_value as timespecs
_CLOCKS = (
    T.CLOCK_REALTIME,
    T.CLOCK_MONOTONIC,
    T.CLOCK_BOOTTIME,
    T.CLOCK_REALTIME_ALARM,
    T.CLOCK_BOOTTIME_ALARM,
)
_ALARM_CLOCKS = (T.CLOCK_REALTIME_ALARM, T.CLOCK_BOOTTIME_ALARM)
# The clocks an alarm clock counts on.
_ALARM_BASE = {
    T.CLOCK_REALTIME_ALARM: T.CLOCK_REALTIME,
    T.CLOCK_BOOTTIME_ALARM: T.CLOCK_BOOTTIME,
}
_CAP_WAKE_ALARM = 35


def sys_timerfd_create(t: Task, args: Args) -> int:
    """timerfd_create(2)."""
    clock, flags = s32(args[0]), s32(args[1])
    if flags & ~TFD.TFD_CREATE_FLAGS or clock not in _CLOCKS:
        raise SyscallError(errno.EINVAL)
    if clock in _ALARM_CLOCKS and not t.creds.has_capability(_CAP_WAKE_ALARM):
        raise SyscallError(errno.EPERM)
    f = new_timerfd(t.kernel.timer_queue, clock, flags)
    try:
        return t.fd_table.new_fd(f, bool(flags & TFD.TFD_CLOEXEC), 0, fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def _timerfd(t: Task, fd: int) -> TimerFD:
    f = t.fd_table.get(fd)
    if not isinstance(f, TimerFD):
        raise SyscallError(errno.EINVAL)
    return f


def _write_itimerspec(t: Task, addr: int, value: int, interval: int) -> None:
    t.copy_out(
        addr,
        _ITIMERSPEC.pack(
            *divmod(interval, T.NSEC_PER_SEC), *divmod(value, T.NSEC_PER_SEC)
        ),
    )


def sys_timerfd_settime(t: Task, args: Args) -> int:
    """timerfd_settime(2)."""
    fd, flags, new_addr, old_addr = s32(args[0]), s32(args[1]), args[2], args[3]
    i_sec, i_nsec, v_sec, v_nsec = _ITIMERSPEC.unpack(
        t.copy_in(new_addr, _ITIMERSPEC.size)
    )
    if flags & ~TFD.TFD_SETTIME_FLAGS:
        raise SyscallError(errno.EINVAL)
    for sec, nsec in ((i_sec, i_nsec), (v_sec, v_nsec)):
        if sec < 0 or not 0 <= nsec < T.NSEC_PER_SEC:
            raise SyscallError(errno.EINVAL)
    f = _timerfd(t, fd)
    value = v_sec * T.NSEC_PER_SEC + v_nsec
    interval = i_sec * T.NSEC_PER_SEC + i_nsec
    absolute = bool(flags & TFD.TFD_TIMER_ABSTIME)
    if absolute and value:
        clock = _ALARM_BASE.get(f.clock, f.clock)
        value = max(1, to_monotonic_ns(t, clock, value))
    old_value, old_interval = f.set(value, interval, absolute, flags)
    if old_addr:
        _write_itimerspec(t, old_addr, old_value, old_interval)
    return 0


def sys_timerfd_gettime(t: Task, args: Args) -> int:
    """timerfd_gettime(2)."""
    f = _timerfd(t, s32(args[0]))
    value, interval = f.get()
    _write_itimerspec(t, args[1], value, interval)
    return 0


ENTRIES = [
    partial(
        N.SYS_timerfd_create,
        "timerfd_create",
        sys_timerfd_create,
        "alarm clocks do not wake a suspended machine; TFD_IOC_SET_TICKS is "
        "not supported",
    ),
    partial(
        N.SYS_timerfd_settime,
        "timerfd_settime",
        sys_timerfd_settime,
        "an absolute CLOCK_REALTIME expiry does not follow later changes of "
        "the host clock, so TFD_TIMER_CANCEL_ON_SET never cancels",
    ),
    partial(
        N.SYS_timerfd_gettime,
        "timerfd_gettime",
        sys_timerfd_gettime,
        "see timerfd_settime",
    ),
]
