"""Futexes: waiting on and waking application memory words (kernel/futex/).

A futex is identified by a key. A private key is the address space and the
address; a shared key names the memory itself, so that processes mapping
the same page at different addresses meet: for a MAP_SHARED file mapping
the file and the offset in it, for shared anonymous memory the offset of
the page in the MemoryFile. A futex in a private mapping has a private key
even without FUTEX_PRIVATE_FLAG, as Linux keys anonymous pages by mm.

Waiters sleep in Task.block and are woken through their wake descriptor, so
a futex wait is interruptible like every other block. Requeueing moves a
waiter to another key without waking it.

PI futexes (FUTEX_LOCK_PI...) follow Linux's protocol on the futex word (the
owner's TID, FUTEX_WAITERS, FUTEX_OWNER_DIED) and hand the lock to the
oldest waiter on unlock. Unlike Linux, no priority is inherited: the sentry
does not schedule host threads by priority.

Robust lists are walked when a thread exits (exit_futexes): futexes it
still holds get FUTEX_OWNER_DIED and a waiter is woken, and PI futexes it
owns are handed to their next waiter.

Lock order: FutexManager._mu, then MemoryManager.mu.
"""

from __future__ import annotations

import logging
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import futex as F
from pkg.abi.linux.mman import PROT_READ
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import atomic_memory

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.memory_manager import MemoryManager

log = logging.getLogger(__name__)

FUTEX_BITSET_MATCH_ANY = F.FUTEX_BITSET_MATCH_ANY

# Key kinds.
_PRIVATE = 0
_SHARED_FILE = 1
_SHARED_MEMORY = 2

Key = tuple[int, int, int]

_ROBUST_HEAD = struct.Struct("<QqQ")


@dataclass(eq=False, slots=True)
class _Waiter:
    task: Task
    key: Key
    bitset: int
    # Where the waiter sees the futex (for PI hand-off).
    mm: MemoryManager | None = None
    addr: int = 0
    pi: bool = False
    woken: bool = False
    # For futex_waitv: the group of waiters one task waits on together,
    # and this waiter's index in it.
    group: _WaitGroup | None = None
    index: int = 0


@dataclass(eq=False, slots=True)
class _WaitGroup:
    waiters: list[_Waiter]
    woken: int = -1


class FutexManager:
    """FutexManager holds every futex waiter of the sandbox."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._queues: dict[Key, list[_Waiter]] = {}

    # Keys.

    def key(self, t: Task, addr: int, private: bool = True) -> Key:
        """Returns the key of the futex at addr as t sees it (get_futex_key).

        Raises:
            SyscallError: EINVAL if addr is misaligned; EFAULT if it is not
                a user address, or for a shared key, not mapped.
        """
        if addr % 4:
            raise SyscallError(errno.EINVAL)
        mm = t.mm
        if addr + 4 > mm.max_address:
            raise SyscallError(errno.EFAULT)
        if private:
            return (_PRIVATE, id(mm), addr)
        with mm.mu:
            vma = mm.vmas.find(addr)
            if vma is None:
                raise SyscallError(errno.EFAULT)
            if vma.private:
                return (_PRIVATE, id(mm), addr)
            if vma.mappable is not None:
                return (
                    _SHARED_FILE,
                    id(vma.mappable),
                    vma.offset + (addr - vma.start),
                )
            ranges, n = mm._ranges_locked(addr, 4, PROT_READ)
            if n != 4:
                raise SyscallError(errno.EFAULT)
            return (_SHARED_MEMORY, 0, ranges[0][0])

    # Waiting and waking.

    def wait(
        self,
        t: Task,
        addr: int,
        private: bool,
        val: int,
        deadline: float | None,
        bitset: int = FUTEX_BITSET_MATCH_ANY,
    ) -> None:
        """Sleeps while the word at addr equals val (FUTEX_WAIT).

        Args:
            deadline: a time.monotonic() value, or None.

        Raises:
            SyscallError: EAGAIN if the word differs, ETIMEDOUT,
                ERESTARTSYS if interrupted, EFAULT, EINVAL.
        """
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        key = self.key(t, addr, private)
        w = _Waiter(t, key, bitset)
        with self._mu:
            # Checked under the lock so a wake between the check and the
            # queueing cannot be lost.
            if t.mm.read_u32(addr) != val & 0xFFFFFFFF:
                raise SyscallError(errno.EAGAIN)
            self._queues.setdefault(key, []).append(w)
        self._sleep(t, [w], deadline)

    def _sleep(self, t: Task, ws: list[_Waiter], deadline: float | None) -> None:
        # A wake that races with an interruption or the deadline wins, as in
        # futex_wait: the waker already counted it.
        try:
            while not ws[0].woken and (ws[0].group is None or ws[0].group.woken < 0):
                t.block(deadline)
        except SyscallError:
            with self._mu:
                if ws[0].woken or (ws[0].group is not None and ws[0].group.woken >= 0):
                    for w in ws:
                        self._remove_locked(w)
                    return
                for w in ws:
                    self._remove_locked(w)
            raise
        if ws[0].group is not None:
            with self._mu:
                for w in ws:
                    self._remove_locked(w)

    def _wake_locked(self, w: _Waiter) -> None:
        self._remove_locked(w)
        if w.group is not None:
            if w.group.woken < 0:
                w.group.woken = w.index
        w.woken = True
        w.task.wake()

    def _wake_key_locked(self, key: Key, n: int, bitset: int) -> int:
        """Wakes waiters of key as futex_wake does: at least one even when n
        is 0 or less, since the count is checked after each wake."""
        q = self._queues.get(key)
        if not q:
            return 0
        woken = 0
        for w in list(q):
            if w.pi:
                raise SyscallError(errno.EINVAL)
            if not w.bitset & bitset:
                continue
            if w.group is not None and w.group.woken >= 0:
                continue
            self._wake_locked(w)
            woken += 1
            if woken >= n:
                break
        return woken

    def wake(
        self,
        t: Task,
        addr: int,
        private: bool,
        n: int,
        bitset: int = FUTEX_BITSET_MATCH_ANY,
    ) -> int:
        """Wakes up to n waiters on addr (FUTEX_WAKE); returns how many."""
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        key = self.key(t, addr, private)
        with self._mu:
            return self._wake_key_locked(key, n, bitset)

    def wake_key(self, key: Key, n: int) -> int:
        """Wakes up to n waiters of key (robust futexes, clear_child_tid)."""
        with self._mu:
            try:
                return self._wake_key_locked(key, n, FUTEX_BITSET_MATCH_ANY)
            except SyscallError:
                return 0

    def requeue(
        self,
        t: Task,
        addr: int,
        addr2: int,
        private: bool,
        nwake: int,
        nrequeue: int,
        cmpval: int | None,
    ) -> int:
        """Wakes nwake waiters of addr and moves up to nrequeue others to
        addr2 (FUTEX_REQUEUE, or FUTEX_CMP_REQUEUE when cmpval is given).

        Returns:
            The number of waiters woken or requeued.

        Raises:
            SyscallError: EINVAL for negative counts or a PI waiter, EAGAIN
                if the word at addr is not cmpval, EFAULT.
        """
        if nwake < 0 or nrequeue < 0:
            raise SyscallError(errno.EINVAL)
        key1 = self.key(t, addr, private)
        key2 = self.key(t, addr2, private)
        with self._mu:
            if cmpval is not None and t.mm.read_u32(addr) != cmpval & 0xFFFFFFFF:
                raise SyscallError(errno.EAGAIN)
            q = self._queues.get(key1)
            if not q:
                return 0
            count = 0
            for w in list(q):
                if count - nwake >= nrequeue:
                    break
                if w.pi:
                    raise SyscallError(errno.EINVAL)
                count += 1
                if count <= nwake:
                    self._wake_locked(w)
                else:
                    self._remove_locked(w)
                    w.key = key2
                    self._queues.setdefault(key2, []).append(w)
            return count

    def wake_op(
        self,
        t: Task,
        addr: int,
        addr2: int,
        private: bool,
        nwake: int,
        nwake2: int,
        encoded: int,
    ) -> int:
        """FUTEX_WAKE_OP: atomically changes the word at addr2, wakes nwake
        waiters of addr, and if the old value of addr2 passes the encoded
        comparison, nwake2 waiters of addr2.

        Raises:
            SyscallError: ENOSYS for an unknown operation or comparison,
                EFAULT, EINVAL.
        """
        op = (encoded >> 28) & 0xF
        cmp = (encoded >> 24) & 0xF
        oparg = _sign_extend12((encoded >> 12) & 0xFFF)
        cmparg = _sign_extend12(encoded & 0xFFF)
        if op & F.FUTEX_OP_OPARG_SHIFT:
            oparg = 1 << (oparg & 31)
            op &= ~F.FUTEX_OP_OPARG_SHIFT
        key1 = self.key(t, addr, private)
        key2 = self.key(t, addr2, private)
        with self._mu:
            old = atomic_memory.fetch_op(t.mm, addr2, op, oparg)
            if old & 0x80000000:
                old -= 1 << 32
            cond = _compare(cmp, old, cmparg)
            woken = self._wake_key_locked(key1, nwake, FUTEX_BITSET_MATCH_ANY)
            if cond:
                woken += self._wake_key_locked(key2, nwake2, FUTEX_BITSET_MATCH_ANY)
            return woken

    def waitv(
        self,
        t: Task,
        futexes: list[tuple[int, int, bool]],
        deadline: float | None,
    ) -> int:
        """Sleeps until one of several futexes is woken (futex_waitv).

        Args:
            futexes: (address, expected value, private) triples.
            deadline: a time.monotonic() value, or None.

        Returns:
            The index of a woken futex.

        Raises:
            SyscallError: EAGAIN (a word differs), ETIMEDOUT, ERESTARTSYS,
                EFAULT, EINVAL.
        """
        keys = [self.key(t, addr, private) for addr, _val, private in futexes]
        group = _WaitGroup([])
        for i, key in enumerate(keys):
            group.waiters.append(
                _Waiter(t, key, FUTEX_BITSET_MATCH_ANY, group=group, index=i)
            )
        with self._mu:
            for addr, val, _private in futexes:
                if t.mm.read_u32(addr) != val & 0xFFFFFFFF:
                    raise SyscallError(errno.EAGAIN)
            for w in group.waiters:
                self._queues.setdefault(w.key, []).append(w)
        self._sleep(t, group.waiters, deadline)
        return group.woken

    # PI futexes.

    def lock_pi(
        self,
        t: Task,
        addr: int,
        private: bool,
        deadline: float | None,
        trylock: bool,
    ) -> None:
        """Takes a PI futex (FUTEX_LOCK_PI, FUTEX_TRYLOCK_PI).

        Raises:
            SyscallError: EDEADLK if t owns it, EAGAIN for a trylock of a
                held lock, ESRCH if the owner does not exist, ETIMEDOUT,
                ERESTARTSYS if interrupted, EFAULT, EINVAL.
        """
        key = self.key(t, addr, private)
        mm = t.mm
        tid = t.tid
        with self._mu:
            while True:
                uval = mm.read_u32(addr)
                if uval & F.FUTEX_TID_MASK == tid:
                    raise SyscallError(errno.EDEADLK)
                has_waiters = any(w.pi for w in self._queues.get(key, ()))
                if not uval & F.FUTEX_TID_MASK and not has_waiters:
                    # Free (maybe with OWNER_DIED kept): take it over.
                    new = (uval & F.FUTEX_OWNER_DIED) | tid
                    if atomic_memory.compare_and_swap(mm, addr, uval, new) == uval:
                        return
                    continue
                if trylock:
                    raise SyscallError(errno.EAGAIN)
                owner_tid = uval & F.FUTEX_TID_MASK
                if owner_tid and owner_tid not in t.kernel.tasks.tasks:
                    raise SyscallError(errno.ESRCH)
                if not uval & F.FUTEX_WAITERS:
                    new = uval | F.FUTEX_WAITERS
                    if atomic_memory.compare_and_swap(mm, addr, uval, new) != uval:
                        continue
                break
            w = _Waiter(t, key, FUTEX_BITSET_MATCH_ANY, mm=mm, addr=addr, pi=True)
            self._queues.setdefault(key, []).append(w)
            if not uval & F.FUTEX_TID_MASK:
                # Owned by nobody yet has waiters (the owner died and the
                # lock was not handed on): hand it to the oldest waiter.
                self._handoff_locked(key, uval)
        self._sleep(t, [w], deadline)

    def unlock_pi(self, t: Task, addr: int, private: bool) -> None:
        """Releases a PI futex t owns, handing it to the oldest waiter
        (FUTEX_UNLOCK_PI).

        Raises:
            SyscallError: EPERM if t does not own it, EFAULT, EINVAL.
        """
        key = self.key(t, addr, private)
        mm = t.mm
        with self._mu:
            while True:
                uval = mm.read_u32(addr)
                if uval & F.FUTEX_TID_MASK != t.tid:
                    raise SyscallError(errno.EPERM)
                if self._handoff_locked(key, uval, mm, addr):
                    return
                if atomic_memory.compare_and_swap(mm, addr, uval, 0) == uval:
                    return

    def _handoff_locked(
        self,
        key: Key,
        uval: int,
        mm: MemoryManager | None = None,
        addr: int = 0,
    ) -> bool:
        """Gives a PI futex whose word is uval to its oldest waiter.

        Returns False if there is no waiter, or if the word changed (the
        caller reads it again).
        """
        waiters = [w for w in self._queues.get(key, ()) if w.pi]
        if not waiters:
            return False
        w = waiters[0]
        new = w.task.tid | F.FUTEX_WAITERS
        if mm is None:
            mm, addr = w.mm, w.addr
            # Keep the owner-died flag for the new owner to see.
            new |= uval & F.FUTEX_OWNER_DIED
        try:
            if atomic_memory.compare_and_swap(mm, addr, uval, new) != uval:
                return False
        except SyscallError:
            return False
        self._wake_locked(w)
        return True

    # Thread exit.

    def exit_robust_list(self, t: Task) -> None:
        """Releases the robust futexes t still holds (exit_robust_list)."""
        head, _size = t.robust_list
        if not head:
            return
        mm = t.mm
        try:
            raw_next, offset, raw_pending = _ROBUST_HEAD.unpack(mm.copy_in(head, 24))
        except SyscallError:
            return
        entry, pi = raw_next & ~1, raw_next & 1
        pending, pending_pi = raw_pending & ~1, raw_pending & 1
        limit = F.ROBUST_LIST_LIMIT
        while entry != head:
            try:
                raw = mm.read_u64(entry)
                fetched = True
            except SyscallError:
                fetched = False
                raw = 0
            if entry != pending:
                if not self._futex_death(t, (entry + offset) & (2**64 - 1), pi, False):
                    return
            if not fetched:
                return
            entry, pi = raw & ~1, raw & 1
            limit -= 1
            if not limit:
                break
        if pending:
            self._futex_death(t, (pending + offset) & (2**64 - 1), pending_pi, True)

    def _futex_death(self, t: Task, uaddr: int, pi: int, pending_op: bool) -> bool:
        """handle_futex_death: returns False to stop walking the list."""
        if uaddr % 4:
            return False
        mm = t.mm
        while True:
            try:
                uval = mm.read_u32(uaddr)
            except SyscallError:
                return False
            owner = uval & F.FUTEX_TID_MASK
            if pending_op and not pi and not owner:
                self._wake_shared(t, uaddr)
                return True
            if owner != t.tid:
                return True
            mval = (uval & F.FUTEX_WAITERS) | F.FUTEX_OWNER_DIED
            try:
                found = atomic_memory.compare_and_swap(mm, uaddr, uval, mval)
            except SyscallError:
                return False
            if found == uval:
                break
        if not pi and uval & F.FUTEX_WAITERS:
            self._wake_shared(t, uaddr)
        return True

    def _wake_shared(self, t: Task, uaddr: int) -> None:
        try:
            key = self.key(t, uaddr, private=False)
        except SyscallError:
            return
        self.wake_key(key, 1)

    def exit_pi_state(self, t: Task) -> None:
        """Hands the PI futexes t owns to their waiters (exit_pi_state_list).

        The waiter that gets one sees FUTEX_OWNER_DIED if the robust list
        walk set it.
        """
        with self._mu:
            for key, q in list(self._queues.items()):
                waiters = [w for w in q if w.pi]
                if not waiters:
                    continue
                w = waiters[0]
                for _ in range(8):
                    try:
                        uval = w.mm.read_u32(w.addr)
                    except SyscallError:
                        break
                    owner = uval & F.FUTEX_TID_MASK
                    if owner not in (t.tid, 0):
                        break
                    if self._handoff_locked(key, uval):
                        break

    # Internals.

    def _remove_locked(self, w: _Waiter) -> None:
        q = self._queues.get(w.key)
        if q is None:
            return
        try:
            q.remove(w)
        except ValueError:
            return
        if not q:
            del self._queues[w.key]

    def waiters(self, key: Key) -> int:
        """Returns the number of waiters of a key (for tests)."""
        with self._mu:
            return len(self._queues.get(key, ()))


def _sign_extend12(v: int) -> int:
    return v - (1 << 12) if v & 0x800 else v


def _compare(cmp: int, old: int, arg: int) -> bool:
    if cmp == F.FUTEX_OP_CMP_EQ:
        return old == arg
    if cmp == F.FUTEX_OP_CMP_NE:
        return old != arg
    if cmp == F.FUTEX_OP_CMP_LT:
        return old < arg
    if cmp == F.FUTEX_OP_CMP_LE:
        return old <= arg
    if cmp == F.FUTEX_OP_CMP_GT:
        return old > arg
    if cmp == F.FUTEX_OP_CMP_GE:
        return old >= arg
    raise SyscallError(errno.ENOSYS)


def exit_futexes(t: Task) -> None:
    """Releases the futexes of an exiting thread (futex_exit_release):
    walks its robust list, then hands on the PI futexes it owns."""
    futexes = t.kernel.futexes
    futexes.exit_robust_list(t)
    futexes.exit_pi_state(t)
