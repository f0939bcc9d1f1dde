"""The advisory lock engine: POSIX byte-range locks and BSD flock locks
(fs/locks.c).

Every file that can be locked has one FileLocks (filesystems keep it in the
inode, so that every open file of the inode shares it). Two kinds of lock
live in it and do not interact, as on Linux:

- byte-range locks, set by fcntl F_SETLK/F_SETLKW (owned by the descriptor
  table of the process, released by any close of the file by that process)
  and F_OFD_SETLK/F_OFD_SETLKW (owned by the open file description,
  released with it). Locks of one owner merge and split like ranges; locks
  of different owners conflict when they overlap and one is a write lock.
- whole-file flock locks, owned by the open file description.

A blocking request registers with the FileLocks' waiter queue and sleeps in
Task.block, so a signal interrupts it (ERESTARTSYS). Blocking POSIX requests
(not OFD ones) detect deadlock cycles between owners as Linux does and fail
with EDEADLK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import EVENT_IN, Entry, Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Byte ranges are [start, end); a lock "to the end of the file" ends here.
LOCK_EOF = 1 << 63
# Linux gives up looking for deadlock cycles after this many steps.
_MAX_DEADLOCK_STEPS = 10


@dataclass(slots=True)
class ByteRangeLock:
    """ByteRangeLock is one lock on [start, end) held by owner.

    Attributes:
        pid: what F_GETLK reports as the holder (-1 for OFD locks).
    """

    owner: object
    type: int
    start: int
    end: int
    pid: int
    ofd: bool


# owner -> the owner it waits for, for deadlock detection. Guarded by
# _blocked_mu.
_blocked_on: dict[int, object] = {}
_blocked_mu = threading.Lock()


def _would_deadlock(waiter: object, holder: object) -> bool:
    cur = holder
    with _blocked_mu:
        for _ in range(_MAX_DEADLOCK_STEPS):
            if cur is waiter:
                return True
            nxt = _blocked_on.get(id(cur))
            if nxt is None:
                return False
            cur = nxt
    return False


class FileLocks:
    """FileLocks holds the advisory locks of one file."""

    __slots__ = ("_bsd", "_mu", "_queue", "_ranges")

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._ranges: list[ByteRangeLock] = []
        # owner (FileDescription) -> F_RDLCK or F_WRLCK.
        self._bsd: dict[object, int] = {}
        self._queue = Queue()

    # Byte-range locks.

    def _conflict_locked(
        self, owner: object, type_: int, start: int, end: int
    ) -> ByteRangeLock | None:
        for r in self._ranges:
            if r.owner is owner or r.end <= start or end <= r.start:
                continue
            if F.F_WRLCK in (type_, r.type):
                return r
        return None

    def test(
        self, owner: object, type_: int, start: int, end: int
    ) -> ByteRangeLock | None:
        """Returns a lock that would conflict with owner locking [start, end)
        as type_ (F_GETLK), or None."""
        with self._mu:
            return self._conflict_locked(owner, type_, start, end)

    def lock(
        self,
        t: Task | None,
        owner: object,
        pid: int,
        type_: int,
        start: int,
        end: int,
        block: bool,
        ofd: bool = False,
    ) -> None:
        """Sets (or with F_UNLCK, clears) a byte-range lock.

        Raises:
            SyscallError: EAGAIN if a conflicting lock is held and block is
                False; EDEADLK for a POSIX wait that would never end;
                ERESTARTSYS if the wait is interrupted.
        """
        if type_ == F.F_UNLCK:
            self.unlock(owner, start, end)
            return
        while True:
            with self._mu:
                conflict = self._conflict_locked(owner, type_, start, end)
                if conflict is None:
                    self._set_locked(owner, pid, type_, start, end, ofd)
                    return
                if not block or t is None:
                    raise SyscallError(errno.EAGAIN)
                if (
                    not ofd
                    and not conflict.ofd
                    and _would_deadlock(owner, conflict.owner)
                ):
                    raise SyscallError(errno.EDEADLK)
                entry = Entry(lambda _m, t=t: t.wake(), EVENT_IN)
                self._queue.register(entry)
            with _blocked_mu:
                _blocked_on[id(owner)] = conflict.owner
            try:
                t.block()
            finally:
                with _blocked_mu:
                    _blocked_on.pop(id(owner), None)
                self._queue.unregister(entry)

    def _set_locked(
        self, owner: object, pid: int, type_: int, start: int, end: int, ofd: bool
    ) -> None:
        kept: list[ByteRangeLock] = []
        for r in self._ranges:
            if r.owner is not owner:
                kept.append(r)
                continue
            if r.type == type_ and r.start <= end and start <= r.end:
                # Overlapping or adjacent, same type: merge into the new one.
                start = min(start, r.start)
                end = max(end, r.end)
                continue
            if r.end <= start or end <= r.start:
                kept.append(r)
                continue
            # Overlapping, other type: keep what lies outside [start, end).
            if r.start < start:
                kept.append(ByteRangeLock(owner, r.type, r.start, start, r.pid, r.ofd))
            if end < r.end:
                kept.append(ByteRangeLock(owner, r.type, end, r.end, r.pid, r.ofd))
        if type_ != F.F_UNLCK:
            kept.append(ByteRangeLock(owner, type_, start, end, pid, ofd))
        kept.sort(key=lambda r: r.start)
        self._ranges = kept

    def unlock(self, owner: object, start: int = 0, end: int = LOCK_EOF) -> None:
        """Releases owner's byte-range locks on [start, end)."""
        with self._mu:
            if not any(r.owner is owner for r in self._ranges):
                return
            self._set_locked(owner, 0, F.F_UNLCK, start, end, False)
        self._queue.notify(EVENT_IN)

    # BSD locks.

    def lock_bsd(self, t: Task | None, owner: object, type_: int, block: bool) -> None:
        """Takes a whole-file flock lock (F_RDLCK for LOCK_SH, F_WRLCK for
        LOCK_EX) for owner, converting one owner already holds.

        Raises:
            SyscallError: EWOULDBLOCK if a conflicting lock is held and block
                is False; ERESTARTSYS if the wait is interrupted.
        """
        released = False
        while True:
            with self._mu:
                held = self._bsd.get(owner)
                if held == type_:
                    return
                if held is not None:
                    # Conversion is not atomic on Linux: the old lock goes
                    # first.
                    del self._bsd[owner]
                    released = True
                conflict = any(
                    o is not owner and F.F_WRLCK in (type_, ty)
                    for o, ty in self._bsd.items()
                )
                if not conflict:
                    self._bsd[owner] = type_
                    break
                if not block or t is None:
                    if released:
                        self._queue.notify(EVENT_IN)
                    raise SyscallError(errno.EWOULDBLOCK)
                entry = Entry(lambda _m, t=t: t.wake(), EVENT_IN)
                self._queue.register(entry)
            if released:
                self._queue.notify(EVENT_IN)
                released = False
            try:
                t.block()
            finally:
                self._queue.unregister(entry)
        if released:
            self._queue.notify(EVENT_IN)

    def unlock_bsd(self, owner: object) -> None:
        """Releases owner's flock lock, if any."""
        with self._mu:
            if self._bsd.pop(owner, None) is None:
                return
        self._queue.notify(EVENT_IN)

    def release_description(self, owner: object) -> None:
        """Drops every lock owned by an open file description (its OFD and
        flock locks) as it is released."""
        self.unlock_bsd(owner)
        self.unlock(owner)

    def holders(self) -> list[ByteRangeLock]:
        """Returns the byte-range locks held (for /proc/locks)."""
        with self._mu:
            return list(self._ranges)
