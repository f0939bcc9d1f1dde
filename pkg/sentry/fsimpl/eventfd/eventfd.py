"""EventFD: the file behind eventfd(2) (fs/eventfd.c).

An eventfd is a 64-bit counter. A write adds to it, blocking (or failing
with EAGAIN) while the sum would pass 0xfffffffffffffffe; a read takes the
whole counter, or one with EFD_SEMAPHORE, blocking (or EAGAIN) while it is
zero. Both transfer exactly one 8-byte host-endian value. Readers are woken
with EVENT_IN and writers with EVENT_OUT through the file's waiter queue,
which poll(2) and epoll watch too.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import eventfd as E
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.anon.anon_inode import AnonFile
from pkg.sentry.kernel.waiter import EVENT_ERR, EVENT_IN, EVENT_OUT, Entry, Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_U64 = struct.Struct("<Q")
_ULLONG_MAX = 0xFFFF_FFFF_FFFF_FFFF


class EventFD(AnonFile):
    """EventFD is an eventfd's counter and its waiters."""

    __slots__ = ("_mu", "_value", "queue", "semaphore")

    NAME = "eventfd"

    def __init__(self, initval: int, flags: int) -> None:
        super().__init__(F.O_RDWR | (flags & F.O_NONBLOCK))
        self._mu = threading.Lock()
        self._value = initval
        self.semaphore = bool(flags & E.EFD_SEMAPHORE)
        self.queue = Queue()

    @property
    def value(self) -> int:
        """The counter, for /proc/self/fdinfo's eventfd-count."""
        return self._value

    def read(self, t: Task, length: int) -> bytes:
        """Takes the counter, or one of it with EFD_SEMAPHORE.

        Raises:
            SyscallError: EINVAL for a buffer shorter than 8 bytes, EAGAIN
                when zero and non-blocking, ERESTARTSYS when interrupted.
        """
        if length < _U64.size:
            raise SyscallError(errno.EINVAL)
        value = self._take()
        if value is None:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            value = self._wait(t, EVENT_IN, self._take)
        self.queue.notify(EVENT_OUT)
        return _U64.pack(value)

    def write(self, t: Task, data: bytes) -> int:
        """Adds an 8-byte value to the counter.

        Raises:
            SyscallError: EINVAL unless exactly 8 bytes are written or for
                the value 0xffffffffffffffff, EAGAIN when the counter would
                overflow and the file is non-blocking, ERESTARTSYS when
                interrupted.
        """
        if len(data) != _U64.size:
            raise SyscallError(errno.EINVAL)
        (value,) = _U64.unpack(data)
        if value == _ULLONG_MAX:
            raise SyscallError(errno.EINVAL)

        def add() -> int | None:
            with self._mu:
                if _ULLONG_MAX - self._value > value:
                    self._value += value
                    return value
                return None

        if add() is None:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            self._wait(t, EVENT_OUT, add)
        self.queue.notify(EVENT_IN)
        return _U64.size

    def kernel_add(self, n: int = 1) -> None:
        """Adds n from inside the kernel (eventfd_signal), as an AIO
        completion does: never blocks, and stops at the maximum."""
        with self._mu:
            self._value += min(n, _ULLONG_MAX - 1 - self._value)
        self.queue.notify(EVENT_IN)

    def _take(self) -> int | None:
        with self._mu:
            if self._value == 0:
                return None
            value = 1 if self.semaphore else self._value
            self._value -= value
            return value

    def _wait(self, t: Task, event: int, attempt: Callable[[], int | None]) -> int:
        """Blocks until attempt() returns a value; event is what wakes us.

        Raises:
            SyscallError: ERESTARTSYS when the task is interrupted.
        """
        entry = Entry(lambda _mask: t.wake(), event)
        self.queue.register(entry)
        try:
            while True:
                result = attempt()
                if result is not None:
                    return result
                t.block()
        finally:
            self.queue.unregister(entry)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        # noop_llseek: succeeds and leaves the (unused) position at 0.
        return 0

    def readiness(self, mask: int) -> int:
        value = self._value
        ready = 0
        if value > 0:
            ready |= EVENT_IN
        if value == _ULLONG_MAX:
            ready |= EVENT_ERR
        if value < _ULLONG_MAX - 1:
            ready |= EVENT_OUT
        return ready & mask

    def event_register(self, entry: Entry) -> None:
        self.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.queue.unregister(entry)


def new_eventfd(initval: int, flags: int) -> EventFD:
    """Returns a new eventfd; flags are eventfd2's, already validated."""
    return EventFD(initval, flags)
