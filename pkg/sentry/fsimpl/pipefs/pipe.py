"""Pipe: the buffer shared by the two ends of a pipe or a FIFO (fs/pipe.c).

As in Linux, a pipe is a ring of page-sized buffers (16 by default,
F_SETPIPE_SZ changes how many): a write appends its odd tail to the last
page if it fits there whole, and otherwise takes fresh pages; a page is
free again once it has been read entirely. So writes of at most PIPE_BUF
bytes are atomic, and the room a writer sees is counted in pages, which
applications can observe (a pipe holding one byte of each page is full).
Larger writes go in pieces as pages free up. A write with no reader left
fails with EPIPE and raises SIGPIPE; a read of an empty pipe with no writer
left returns end of file.

Blocking is on the pipe's waiter queue: a blocked task registers an Entry
that wakes it and sleeps in Task.block, so signals interrupt it. The same
queue reports readiness changes to poll and epoll.

FIFOs add the open protocol: opening one end blocks until the other end is
opened (unless O_NONBLOCK, or O_RDWR which is both ends at once).
"""

from __future__ import annotations

import collections
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
        "_bufs",
        "_len",
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
        # The pages in use, oldest first: [data, read offset] each.
        self._bufs: collections.deque[list] = collections.deque()
        self._len = 0
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
                self._bufs.clear()
                self._len = 0
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
                if self._len:
                    out = self._take_locked(length, consume=True)
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
                if self._len:
                    return self._take_locked(length, consume=False)
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
            self._take_locked(n, consume=True)
        if n:
            self.queue.notify(EVENT_OUT)

    def write(
        self, t: Task | None, data: bytes, nonblock: bool, partial: bool = False
    ) -> int:
        """Writes data, atomically if it is at most PIPE_BUF bytes.

        Returns:
            The bytes written: all of data unless nonblock or a signal cut
            a large write short, or (partial, as vmsplice(2)) whatever fit
            once there was room.

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
                wrote = self._put_locked(data, total, n)
                total += wrote
                done = total == n or (partial and total > 0)
                if not done and not nonblock and t is not None:
                    entry = Entry(lambda _m: t.wake(), EVENT_OUT | EVENT_ERR)
                    self.queue.register(entry)
            if wrote:
                self.queue.notify(EVENT_IN)
            if done:
                return total
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

    def _take_locked(self, length: int, consume: bool) -> bytes:
        """Returns up to length bytes from the oldest pages, removing them
        if consume."""
        parts = []
        want = length
        for entry in self._bufs:
            if not want:
                break
            data, off = entry
            chunk = data[off : off + want]
            parts.append(bytes(chunk))
            want -= len(chunk)
        out = b"".join(parts)
        if consume:
            left = len(out)
            self._len -= left
            while left:
                entry = self._bufs[0]
                avail = len(entry[0]) - entry[1]
                if avail <= left:
                    self._bufs.popleft()
                    left -= avail
                else:
                    entry[1] += left
                    left = 0
        return out

    def _put_locked(self, data: bytes, total: int, n: int) -> int:
        """Appends what the pages allow of data[total:n], as pipe_write
        does; returns how many bytes went in. A write of at most PIPE_BUF
        bytes goes in whole or not at all."""
        pos = total
        if total == 0 and self._bufs:
            # The odd tail of the write's length joins the last page if it
            # fits there entirely.
            chars = n & (_PAGE - 1)
            last = self._bufs[-1][0]
            if chars and len(last) + chars <= _PAGE:
                last += data[:chars]
                self._len += chars
                pos = chars
        slots = self.capacity // _PAGE
        if n <= PIPE_BUF and pos == 0 and len(self._bufs) >= slots:
            return 0
        while pos < n and len(self._bufs) < slots:
            chunk = bytearray(data[pos : pos + _PAGE])
            self._bufs.append([chunk, 0])
            self._len += len(chunk)
            pos += len(chunk)
        return pos - total

    @staticmethod
    def _sigpipe(t: Task) -> None:
        send_to_task(t, SignalInfo(signo=SIG.SIGPIPE, code=SIG.SI_USER, pid=t.pid))

    # State.

    def queued(self) -> int:
        """Returns the number of bytes buffered (FIONREAD)."""
        with self._mu:
            return self._len

    def readiness(self, mask: int, readable: bool, writable: bool, w_seen: int) -> int:
        """Returns the ready events of an end (pipe_poll)."""
        ready = 0
        with self._mu:
            if readable:
                if self._len:
                    ready |= EVENT_IN | EVENT_RDNORM
                if not self.writers and w_seen != self.w_counter:
                    ready |= EVENT_HUP
            if writable:
                if len(self._bufs) < self.capacity // _PAGE:
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
            if len(self._bufs) > size // _PAGE:
                raise SyscallError(errno.EBUSY)
            self.capacity = size
        self.queue.notify(EVENT_OUT)
        return size
