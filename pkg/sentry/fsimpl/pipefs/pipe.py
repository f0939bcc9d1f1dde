"""Pipe: the buffer shared by the two ends of a pipe or a FIFO (fs/pipe.c).

A pipe holds up to `capacity` bytes (64 KiB by default, F_SETPIPE_SZ
changes it). Writes of at most PIPE_BUF bytes are atomic: they wait until
they fit whole. Larger writes go in pieces as room appears. A write with no
reader left fails with EPIPE and raises SIGPIPE; a read of an empty pipe
with no writer left returns end of file.

Blocking is on the pipe's waiter queue: a blocked task registers an Entry
that wakes it and sleeps in Task.block, so signals interrupt it. The same
queue reports readiness changes to poll and epoll.

FIFOs add the open protocol: opening one end blocks until the other end is
opened (unless O_NONBLOCK, or O_RDWR which is both ends at once).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import signal as SIG
from pkg.abi.linux.fs import DEFAULT_PIPE_SIZE, PIPE_BUF, PIPE_MAX_SIZE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_RESOURCE
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_task
from pkg.sentry.kernel.waiter import (
    EVENT_ERR,
    EVENT_HUP,
    EVENT_IN,
    EVENT_OUT,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
    Queue,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_PAGE = 4096
# round_pipe_size refuses sizes above this.
_MAX_ROUNDABLE = 1 << 31


def round_pipe_size(size: int) -> int:
    """Returns the capacity F_SETPIPE_SZ makes of size: at least a page, a
    power of two; 0 if size is too large (round_pipe_size)."""
    if size > _MAX_ROUNDABLE:
        return 0
    if size < _PAGE:
        return _PAGE
    return 1 << (size - 1).bit_length()


class Pipe:
    """Pipe is a pipe's buffer and the count of its ends.

    Attributes:
        queue: notified with EVENT_IN/EVENT_OUT/EVENT_HUP/EVENT_ERR when
            readiness may have changed.
        named: a FIFO (with the open protocol), not a pipe(2) pipe.
    """

    __slots__ = (
        "_buf",
        "_mu",
        "capacity",
        "named",
        "queue",
        "r_counter",
        "readers",
        "w_counter",
        "writers",
    )

    def __init__(self, named: bool) -> None:
        self._mu = threading.Lock()
        self._buf = bytearray()
        self.capacity = DEFAULT_PIPE_SIZE
        self.named = named
        self.queue = Queue()
        self.readers = 0
        self.writers = 0
        # How many times each end has been opened; a FIFO open waits for
        # the other counter to move.
        self.r_counter = 0
        self.w_counter = 0

    # Ends.

    def open_end(self, t: Task | None, flags: int) -> int:
        """Registers a new open end with access mode flags, blocking for a
        FIFO as fifo_open does.

        Returns:
            The writer counter before which a reader reports no EVENT_HUP
            (fifo_open's f_version): the current one for a non-blocking
            reader of a FIFO without writers, else 0.

        Raises:
            SyscallError: ENXIO for a non-blocking write-only open with no
                reader; ERESTARTSYS if the wait is interrupted.
        """
        acc = flags & F.O_ACCMODE
        nonblock = bool(flags & F.O_NONBLOCK)
        with self._mu:
            if acc == F.O_RDONLY:
                self.readers += 1
                self.r_counter += 1
                no_writer = self.named and not self.writers
                seen = self.w_counter if no_writer and nonblock else 0
                wait_for = "w" if no_writer and not nonblock else ""
            elif acc == F.O_WRONLY:
                if self.named and nonblock and not self.readers:
                    raise SyscallError(errno.ENXIO)
                self.writers += 1
                self.w_counter += 1
                seen = 0
                wait_for = "r" if self.named and not self.readers else ""
            else:
                self.readers += 1
                self.writers += 1
                self.r_counter += 1
                self.w_counter += 1
                seen = 0
                wait_for = ""
            start = self.w_counter if wait_for == "w" else self.r_counter
        self.queue.notify(EVENT_IN | EVENT_OUT)
        if not wait_for:
            return seen
        try:
            self._wait_for_partner(t, wait_for, start)
        except SyscallError:
            self.close_end(acc)
            raise
        return seen

    def _wait_for_partner(self, t: Task | None, which: str, start: int) -> None:
        if t is None:
            raise SyscallError(errno.ENXIO)
        while True:
            with self._mu:
                now = self.w_counter if which == "w" else self.r_counter
                if now != start:
                    return
                entry = Entry(lambda _m: t.wake(), EVENT_IN | EVENT_OUT)
                self.queue.register(entry)
            try:
                t.block()
            finally:
                self.queue.unregister(entry)

    def close_end(self, acc: int) -> None:
        """Unregisters an end opened with access mode acc."""
        with self._mu:
            if acc in (F.O_RDONLY, F.O_RDWR):
                self.readers -= 1
            if acc in (F.O_WRONLY, F.O_RDWR):
                self.writers -= 1
            if self.readers == 0 and self.writers == 0 and self.named:
                # A FIFO's contents do not survive its last close.
                self._buf.clear()
        self.queue.notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_ERR)

    # I/O.

    def read(self, t: Task | None, length: int, nonblock: bool) -> bytes:
        """Reads up to length bytes; b"" at end of file.

        Raises:
            SyscallError: EAGAIN when empty and nonblock; ERESTARTSYS if a
                wait is interrupted.
        """
        while True:
            with self._mu:
                if self._buf:
                    n = min(length, len(self._buf))
                    out = bytes(self._buf[:n])
                    del self._buf[:n]
                    break
                if not self.writers:
                    return b""
                if nonblock or t is None:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN | EVENT_HUP)
                self.queue.register(entry)
            try:
                t.block()
            finally:
                self.queue.unregister(entry)
        self.queue.notify(EVENT_OUT)
        return out

    def peek(self, t: Task | None, length: int, nonblock: bool) -> bytes:
        """Returns up to length buffered bytes without consuming them (tee),
        waiting like read."""
        while True:
            with self._mu:
                if self._buf:
                    return bytes(self._buf[:length])
                if not self.writers:
                    return b""
                if nonblock or t is None:
                    raise SyscallError(errno.EAGAIN)
                entry = Entry(lambda _m: t.wake(), EVENT_IN | EVENT_HUP)
                self.queue.register(entry)
            try:
                t.block()
            finally:
                self.queue.unregister(entry)

    def consume(self, n: int) -> None:
        """Drops the first n buffered bytes (after a successful peek)."""
        with self._mu:
            del self._buf[:n]
        if n:
            self.queue.notify(EVENT_OUT)

    def write(self, t: Task | None, data: bytes, nonblock: bool) -> int:
        """Writes data, atomically if it is at most PIPE_BUF bytes.

        Returns:
            The bytes written: all of data unless nonblock or a signal cut
            a large write short.

        Raises:
            SyscallError: EPIPE (after SIGPIPE) with no reader; EAGAIN when
                nothing fits and nonblock; ERESTARTSYS if interrupted before
                anything was written.
        """
        n = len(data)
        total = 0
        while True:
            with self._mu:
                if not self.readers:
                    if total:
                        return total
                    if t is not None:
                        self._sigpipe(t)
                    raise SyscallError(errno.EPIPE)
                free = self.capacity - len(self._buf)
                wrote = 0
                if n <= PIPE_BUF:
                    if free >= n:
                        self._buf += data
                        wrote = n
                elif free > 0:
                    chunk = data[total : total + free]
                    self._buf += chunk
                    wrote = len(chunk)
                total += wrote
                if total < n and not nonblock and t is not None:
                    entry = Entry(lambda _m: t.wake(), EVENT_OUT | EVENT_ERR)
                    self.queue.register(entry)
            if wrote:
                self.queue.notify(EVENT_IN)
            if total == n:
                return n
            if nonblock or t is None:
                if total:
                    return total
                raise SyscallError(errno.EAGAIN)
            try:
                t.block()
            except SyscallError:
                if total:
                    return total
                raise
            finally:
                self.queue.unregister(entry)

    @staticmethod
    def _sigpipe(t: Task) -> None:
        send_to_task(t, SignalInfo(signo=SIG.SIGPIPE, code=SIG.SI_USER, pid=t.pid))

    # State.

    def queued(self) -> int:
        """Returns the number of bytes buffered (FIONREAD)."""
        with self._mu:
            return len(self._buf)

    def readiness(self, mask: int, readable: bool, writable: bool, w_seen: int) -> int:
        """Returns the ready events of an end (pipe_poll)."""
        ready = 0
        with self._mu:
            if readable:
                if self._buf:
                    ready |= EVENT_IN | EVENT_RDNORM
                if not self.writers and w_seen != self.w_counter:
                    ready |= EVENT_HUP
            if writable:
                if len(self._buf) < self.capacity:
                    ready |= EVENT_OUT | EVENT_WRNORM
                if not self.readers:
                    ready |= EVENT_ERR
        return ready & (mask | EVENT_HUP | EVENT_ERR)

    def set_capacity(self, t: Task, size: int) -> int:
        """Applies F_SETPIPE_SZ; returns the new capacity.

        Raises:
            SyscallError: EINVAL for a size too large to round, EPERM above
                pipe-max-size without CAP_SYS_RESOURCE, EBUSY if the data
                held does not fit.
        """
        size = round_pipe_size(size & 0xFFFFFFFF)
        if not size:
            raise SyscallError(errno.EINVAL)
        if size > PIPE_MAX_SIZE and not t.creds.has_capability(CAP_SYS_RESOURCE):
            raise SyscallError(errno.EPERM)
        with self._mu:
            if len(self._buf) > size:
                raise SyscallError(errno.EBUSY)
            self.capacity = size
        self.queue.notify(EVENT_OUT)
        return size
