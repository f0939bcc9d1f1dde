"""TimerFD: the file behind timerfd_create(2) (fs/timerfd.c).

A timerfd counts expirations of a timer. The timer runs on the kernel's
timer thread (kernel/timers.py) at a deadline on the monotonic clock; a
deadline on another clock is converted when the timer is set. An expiry
adds one to the count and makes the file readable; a periodic timer is not
rescheduled from the timer thread: the read (or timerfd_gettime) that
notices it counts the periods that passed meanwhile and reschedules it, as
Linux's timerfd_read does with hrtimer_forward, so an unread periodic timer
costs nothing.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.anon.anon_inode import AnonFile
from pkg.sentry.kernel.waiter import EVENT_IN, Entry, Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.timers import TimerHandle, TimerQueue

_U64 = struct.Struct("<Q")


class TimerFD(AnonFile):
    """TimerFD is a timerfd: its timer setting and expiration count.

    Attributes:
        clock: the CLOCK_* the timer was created on.
        settime_flags: the flags of the last timerfd_settime (fdinfo).
    """

    __slots__ = (
        "_expired",
        "_expiry",
        "_handle",
        "_interval",
        "_mu",
        "_ticks",
        "_timers",
        "clock",
        "queue",
        "settime_flags",
    )

    NAME = "timerfd"

    def __init__(self, timers: TimerQueue, clock: int, flags: int) -> None:
        super().__init__(F.O_RDWR | (flags & F.O_NONBLOCK))
        self._timers = timers
        self.clock = clock
        self.settime_flags = 0
        self._mu = threading.Lock()
        # Monotonic deadline of the next expiry, 0 when disarmed.
        self._expiry = 0
        self._interval = 0
        # Expirations not yet read; whether the timer fired and a periodic
        # one awaits rescheduling.
        self._ticks = 0
        self._expired = False
        self._handle: TimerHandle | None = None
        self.queue = Queue()

    # The timer.

    def set(
        self, value: int, interval: int, absolute: bool, flags: int
    ) -> tuple[int, int]:
        """Arms the timer (timerfd_settime); returns the old setting as
        get() reports it.

        Args:
            value: the first expiry in ns: on the monotonic clock if
                absolute, else relative to now; 0 disarms.
            interval: the period in ns, 0 for a one-shot timer.
            absolute: see value.
            flags: the settime flags, kept for fdinfo.
        """
        with self._mu:
            old = self._get_locked()
            self._timers.cancel(self._handle)
            self._handle = None
            self._ticks = 0
            self._expired = False
            self.settime_flags = flags
            self._interval = interval if value else 0
            if value:
                now = time.monotonic_ns()
                self._expiry = max(value if absolute else now + value, 1)
                self._handle = self._timers.schedule(self._expiry, self._fire)
            else:
                self._expiry = 0
        return old

    def get(self) -> tuple[int, int]:
        """Returns (ns to the next expiry, interval) (timerfd_gettime)."""
        with self._mu:
            return self._get_locked()

    def _get_locked(self) -> tuple[int, int]:
        self._forward_locked()
        if not self._expiry:
            return 0, self._interval
        return max(0, self._expiry - time.monotonic_ns()), self._interval

    def _fire(self) -> None:
        """Runs on the timer thread at the expiry (timerfd_tmrproc)."""
        with self._mu:
            self._handle = None
            if not self._expiry:
                return
            self._ticks += 1
            self._expired = True
        self.queue.notify(EVENT_IN)

    def _forward_locked(self) -> None:
        """Counts the periods of a fired periodic timer that passed since
        its expiry and reschedules it (hrtimer_forward_now)."""
        if not self._expired or not self._interval:
            return
        self._expired = False
        now = time.monotonic_ns()
        if now >= self._expiry:
            periods = (now - self._expiry) // self._interval + 1
            self._expiry += periods * self._interval
            self._ticks += periods - 1
        self._handle = self._timers.schedule(self._expiry, self._fire)

    @property
    def ticks(self) -> int:
        """Expirations not yet read (fdinfo)."""
        return self._ticks

    # The file.

    def read(self, t: Task, length: int) -> bytes:
        """Returns and resets the expiration count.

        Raises:
            SyscallError: EINVAL for a buffer shorter than 8 bytes, EAGAIN
                when the timer has not expired and the file is non-blocking,
                ERESTARTSYS when interrupted.
        """
        if length < _U64.size:
            raise SyscallError(errno.EINVAL)
        ticks = self._take()
        if ticks is None:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            entry = Entry(lambda _mask: t.wake(), EVENT_IN)
            self.queue.register(entry)
            try:
                while ticks is None:
                    t.block()
                    ticks = self._take()
            finally:
                self.queue.unregister(entry)
        return _U64.pack(ticks)

    def _take(self) -> int | None:
        with self._mu:
            if not self._ticks:
                return None
            self._forward_locked()
            ticks = self._ticks
            self._ticks = 0
            return ticks

    def seek(self, t: Task, offset: int, whence: int) -> int:
        # noop_llseek.
        return 0

    def readiness(self, mask: int) -> int:
        return mask & EVENT_IN if self._ticks else 0

    def event_register(self, entry: Entry) -> None:
        self.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.queue.unregister(entry)

    def release(self) -> None:
        with self._mu:
            self._expiry = 0
            self._timers.cancel(self._handle)
            self._handle = None


def new_timerfd(timers: TimerQueue, clock: int, flags: int) -> TimerFD:
    """Returns a disarmed timerfd on clock; flags are timerfd_create's,
    validated."""
    return TimerFD(timers, clock, flags)
