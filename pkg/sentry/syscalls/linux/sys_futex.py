"""futex(2): FUTEX_WAIT, FUTEX_WAKE and their bitset forms."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.futex import FUTEX_BITSET_MATCH_ANY
from pkg.sentry.syscalls.linux.sys_time import clock_now_ns, read_timespec
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)


def _deadline(t: Task, addr: int, absolute: bool, clock: int) -> float | None:
    if not addr:
        return None
    ns = read_timespec(t, addr)
    if absolute:
        ns -= clock_now_ns(t, clock)
    return time.monotonic() + max(ns, 0) / T.NSEC_PER_SEC


def sys_futex(t: Task, args: Args) -> int:
    """futex(2)."""
    addr, op, val, timeout, _addr2, val3 = args
    op = s32(op)
    cmd = op & FUTEX_CMD_MASK
    futexes = t.kernel.futexes
    if op & FUTEX_CLOCK_REALTIME and cmd not in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        # do_futex: the realtime clock flag with any other command.
        raise SyscallError(errno.ENOSYS)
    if cmd == FUTEX_WAIT:
        deadline = _deadline(t, timeout, False, T.CLOCK_MONOTONIC)
        try:
            futexes.wait(t, addr, val, deadline, FUTEX_BITSET_MATCH_ANY)
        except SyscallError as e:
            if e.errno == errno.ERESTARTSYS:
                # TODO(#4): restart with the remaining timeout.
                raise SyscallError(errno.EINTR) from None
            raise
        return 0
    if cmd == FUTEX_WAIT_BITSET:
        clock = T.CLOCK_REALTIME if op & FUTEX_CLOCK_REALTIME else T.CLOCK_MONOTONIC
        deadline = _deadline(t, timeout, True, clock)
        futexes.wait(t, addr, val, deadline, val3 & 0xFFFFFFFF)
        return 0
    if cmd == FUTEX_WAKE:
        return futexes.wake(t, addr, s32(val))
    if cmd == FUTEX_WAKE_BITSET:
        return futexes.wake(t, addr, s32(val), val3 & 0xFFFFFFFF)
    # TODO(#4): requeue, wake_op and PI futexes.
    raise SyscallError(errno.ENOSYS)


ENTRIES = [
    partial(
        N.SYS_futex,
        "futex",
        sys_futex,
        "private wait/wake only; requeue, wake_op and PI arrive with #4",
    ),
]
