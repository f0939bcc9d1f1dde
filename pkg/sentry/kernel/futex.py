"""Futexes: waiting on and waking application memory words (kernel/futex/).

A futex is identified by a key: for private futexes the address space and the
address; waiters sleep in Task.block and are woken through their wake
descriptor, so a futex wait is interruptible like every other block.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


@dataclass(eq=False, slots=True)
class _Waiter:
    task: Task
    key: tuple[int, int]
    bitset: int
    woken: bool = False


@dataclass(slots=True)
class _Bucket:
    waiters: list[_Waiter] = field(default_factory=list)


class FutexManager:
    """FutexManager holds every futex waiter of the sandbox."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._buckets: dict[tuple[int, int], _Bucket] = {}

    @staticmethod
    def key(t: Task, addr: int) -> tuple[int, int]:
        """Returns the key of a private futex at addr in t's address space."""
        if addr % 4:
            raise SyscallError(errno.EINVAL)
        return (id(t.mm), addr)

    def wait(
        self, t: Task, addr: int, val: int, deadline: float | None, bitset: int
    ) -> None:
        """Sleeps while the word at addr equals val (FUTEX_WAIT).

        Raises:
            SyscallError: EAGAIN if the word differs, ETIMEDOUT, ERESTARTSYS.
        """
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        key = self.key(t, addr)
        w = _Waiter(t, key, bitset)
        with self._mu:
            # Checked under the lock so a wake between the check and the
            # queueing cannot be lost.
            if t.mm.read_u32(addr) != val & 0xFFFFFFFF:
                raise SyscallError(errno.EAGAIN)
            self._buckets.setdefault(key, _Bucket()).waiters.append(w)
        try:
            while not w.woken:
                t.block(deadline)
        finally:
            with self._mu:
                if not w.woken:
                    self._remove_locked(w)

    def wake(
        self, t: Task, addr: int, n: int, bitset: int = FUTEX_BITSET_MATCH_ANY
    ) -> int:
        """Wakes up to n waiters on addr (FUTEX_WAKE); returns how many."""
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        key = self.key(t, addr)
        woken = 0
        with self._mu:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0
            for w in list(bucket.waiters):
                if woken >= n:
                    break
                if w.bitset & bitset:
                    self._remove_locked(w)
                    w.woken = True
                    w.task.wake()
                    woken += 1
        return woken

    def _remove_locked(self, w: _Waiter) -> None:
        bucket = self._buckets.get(w.key)
        if bucket is None:
            return
        try:
            bucket.waiters.remove(w)
        except ValueError:
            return
        if not bucket.waiters:
            del self._buckets[w.key]


def deadline_from_timeout(seconds: float | None) -> float | None:
    """Converts a relative timeout to a monotonic deadline."""
    return None if seconds is None else time.monotonic() + seconds
