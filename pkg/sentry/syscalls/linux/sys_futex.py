"""futex(2) and futex_waitv(2).

The waiting and waking live in kernel/futex.py; this module decodes the
operations and their timeouts and makes interrupted waits restartable:
a wait with a timeout restarts through restart_syscall with the original
deadline (futex_wait_restart), one without returns ERESTARTSYS, and an
interrupted FUTEX_LOCK_PI always restarts (ERESTARTNOINTR).
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import futex as F
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.futex import FUTEX_BITSET_MATCH_ANY
from pkg.sentry.syscalls.linux.sys_time import read_timespec, to_monotonic_ns
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# futex_waitv: struct futex_waitv, flags and limits.
_FUTEX_WAITV = struct.Struct("<QQII")
_FUTEX2_SIZE_U32 = 0x02
_FUTEX2_SIZE_MASK = 0x03
_FUTEX2_PRIVATE = F.FUTEX_PRIVATE_FLAG
_FUTEX_WAITV_MAX = 128


def _deadline(abs_ns: int) -> float:
    return abs_ns / T.NSEC_PER_SEC


def _wait(
    t: Task,
    addr: int,
    private: bool,
    val: int,
    deadline_ns: int | None,
    bitset: int,
) -> int:
    """futex_wait, restartable with the same absolute deadline."""
    futexes = t.kernel.futexes
    try:
        futexes.wait(
            t,
            addr,
            private,
            val,
            None if deadline_ns is None else _deadline(deadline_ns),
            bitset,
        )
    except SyscallError as e:
        if e.errno != errno.ERESTARTSYS or deadline_ns is None:
            raise
        t.restart_block = lambda t: _wait(t, addr, private, val, deadline_ns, bitset)
        raise SyscallError(errno.ERESTART_RESTARTBLOCK) from None
    return 0


def _lock_pi(
    t: Task, addr: int, private: bool, deadline_ns: int | None, trylock: bool
) -> int:
    try:
        t.kernel.futexes.lock_pi(
            t,
            addr,
            private,
            None if deadline_ns is None else _deadline(deadline_ns),
            trylock,
        )
    except SyscallError as e:
        if e.errno == errno.ERESTARTSYS:
            raise SyscallError(errno.ERESTARTNOINTR) from None
        raise
    return 0


def sys_futex(t: Task, args: Args) -> int:
    """futex(2).

    Unlike Linux, PI futexes inherit no priority, and FUTEX_WAIT_REQUEUE_PI
    and FUTEX_CMP_REQUEUE_PI are not supported (ENOSYS), as in gVisor.
    """
    addr, raw_op, val, timeout, addr2, val3 = args
    op = s32(raw_op)
    cmd = op & F.FUTEX_CMD_MASK
    private = bool(op & F.FUTEX_PRIVATE_FLAG)
    realtime = bool(op & F.FUTEX_CLOCK_REALTIME)
    if realtime and cmd not in (
        F.FUTEX_WAIT_BITSET,
        F.FUTEX_WAIT_REQUEUE_PI,
        F.FUTEX_LOCK_PI2,
    ):
        raise SyscallError(errno.ENOSYS)
    futexes = t.kernel.futexes
    val3 = u32(val3)
    # The "timeout" argument is a count for the requeueing operations.
    val2 = s32(timeout)

    if cmd == F.FUTEX_WAIT:
        deadline = None
        if timeout:
            deadline = time.monotonic_ns() + read_timespec(t, timeout)
        return _wait(t, addr, private, val, deadline, FUTEX_BITSET_MATCH_ANY)
    if cmd == F.FUTEX_WAIT_BITSET:
        deadline = None
        if timeout:
            clock = T.CLOCK_REALTIME if realtime else T.CLOCK_MONOTONIC
            deadline = to_monotonic_ns(t, clock, read_timespec(t, timeout))
        return _wait(t, addr, private, val, deadline, val3)
    if cmd == F.FUTEX_WAKE:
        return futexes.wake(t, addr, private, s32(val))
    if cmd == F.FUTEX_WAKE_BITSET:
        return futexes.wake(t, addr, private, s32(val), val3)
    if cmd == F.FUTEX_REQUEUE:
        return futexes.requeue(t, addr, addr2, private, s32(val), val2, None)
    if cmd == F.FUTEX_CMP_REQUEUE:
        return futexes.requeue(t, addr, addr2, private, s32(val), val2, val3)
    if cmd == F.FUTEX_WAKE_OP:
        return futexes.wake_op(t, addr, addr2, private, s32(val), val2, val3)
    if cmd in (F.FUTEX_LOCK_PI, F.FUTEX_LOCK_PI2):
        deadline = None
        if timeout:
            # FUTEX_LOCK_PI's timeout is absolute on CLOCK_REALTIME; the
            # newer FUTEX_LOCK_PI2's on CLOCK_MONOTONIC unless asked.
            realtime_clock = cmd == F.FUTEX_LOCK_PI or realtime
            clock = T.CLOCK_REALTIME if realtime_clock else T.CLOCK_MONOTONIC
            deadline = to_monotonic_ns(t, clock, read_timespec(t, timeout))
        return _lock_pi(t, addr, private, deadline, False)
    if cmd == F.FUTEX_TRYLOCK_PI:
        return _lock_pi(t, addr, private, None, True)
    if cmd == F.FUTEX_UNLOCK_PI:
        futexes.unlock_pi(t, addr, private)
        return 0
    # FUTEX_FD was removed from Linux; the requeue-PI pair is unsupported.
    raise SyscallError(errno.ENOSYS)


def _waitv(
    t: Task, futexes: list[tuple[int, int, bool]], deadline_ns: int | None
) -> int:
    deadline = None if deadline_ns is None else _deadline(deadline_ns)
    try:
        return t.kernel.futexes.waitv(t, futexes, deadline)
    except SyscallError as e:
        if e.errno == errno.ERESTARTSYS and deadline_ns is not None:
            t.restart_block = lambda t: _waitv(t, futexes, deadline_ns)
            raise SyscallError(errno.ERESTART_RESTARTBLOCK) from None
        raise


def sys_futex_waitv(t: Task, args: Args) -> int:
    """futex_waitv(2): waits on several 32-bit futexes at once; returns the
    index of one that was woken."""
    waiters, nr, flags, timeout = args[0], u32(args[1]), args[2], args[3]
    clock = s32(args[4])
    if flags or not 0 < nr <= _FUTEX_WAITV_MAX:
        raise SyscallError(errno.EINVAL)
    deadline = None
    if timeout:
        if clock not in (T.CLOCK_MONOTONIC, T.CLOCK_REALTIME):
            raise SyscallError(errno.EINVAL)
        deadline = to_monotonic_ns(t, clock, read_timespec(t, timeout))
    raw = t.copy_in(waiters, nr * _FUTEX_WAITV.size)
    futexes = []
    for i in range(nr):
        val, uaddr, wflags, reserved = _FUTEX_WAITV.unpack_from(raw, i * 24)
        if reserved or wflags & ~(_FUTEX2_SIZE_MASK | _FUTEX2_PRIVATE):
            raise SyscallError(errno.EINVAL)
        if wflags & _FUTEX2_SIZE_MASK != _FUTEX2_SIZE_U32 or val >> 32:
            raise SyscallError(errno.EINVAL)
        futexes.append((uaddr, val, bool(wflags & _FUTEX2_PRIVATE)))
    return _waitv(t, futexes, deadline)


ENTRIES = [
    partial(
        N.SYS_futex,
        "futex",
        sys_futex,
        "no priority inheritance for PI futexes; FUTEX_WAIT_REQUEUE_PI and "
        "FUTEX_CMP_REQUEUE_PI fail with ENOSYS",
    ),
    full(N.SYS_futex_waitv, "futex_waitv", sys_futex_waitv),
]
