"""Tests of FutexManager with several tasks blocking on real threads (the
syscall tests need clone to do the same in the sandbox)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import futex as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import atomic_memory
from pkg.sentry.kernel.kernel_testutil import FakeKernel, FakeMM, Runner, wait_until
from pkg.sentry.kernel.task import Task

A = 0x2000
B = 0x2004
C = 0x2008


@pytest.fixture
def kernel() -> Iterator[FakeKernel]:
    k = FakeKernel()
    yield k
    k.close()


def _threads(kernel: FakeKernel, n: int) -> list[Task]:
    return list(kernel.new_process(threads=n).tasks)


def _waiting(kernel: FakeKernel, t: Task, addr: int) -> bool:
    return kernel.futexes.waiters(kernel.futexes.key(t, addr)) > 0


def test_wait_and_wake(kernel: FakeKernel) -> None:
    waiter, waker = _threads(kernel, 2)
    r = Runner(lambda: kernel.futexes.wait(waiter, A, True, 0, None))
    assert wait_until(lambda: _waiting(kernel, waker, A))
    assert kernel.futexes.wake(waker, A, True, 1) == 1
    r.join()
    assert kernel.futexes.wake(waker, A, True, 1) == 0


def test_wake_zero_wakes_one(kernel: FakeKernel) -> None:
    waiter, waker = _threads(kernel, 2)
    r = Runner(lambda: kernel.futexes.wait(waiter, A, True, 0, None))
    assert wait_until(lambda: _waiting(kernel, waker, A))
    assert kernel.futexes.wake(waker, A, True, 0) == 1
    r.join()


def test_value_mismatch(kernel: FakeKernel) -> None:
    (t,) = _threads(kernel, 1)
    t.mm.write_u32(A, 5)
    with pytest.raises(SyscallError) as e:
        kernel.futexes.wait(t, A, True, 4, None)
    assert e.value.errno == errno.EAGAIN


def test_interrupt_ends_wait(kernel: FakeKernel) -> None:
    waiter, other = _threads(kernel, 2)
    r = Runner(lambda: kernel.futexes.wait(waiter, A, True, 0, None))
    assert wait_until(lambda: _waiting(kernel, other, A))
    waiter.interrupt()
    with pytest.raises(SyscallError) as e:
        r.join()
    assert e.value.errno == errno.ERESTARTSYS
    assert not _waiting(kernel, other, A)


def test_bitsets(kernel: FakeKernel) -> None:
    w1, w2, waker = _threads(kernel, 3)
    r1 = Runner(lambda: kernel.futexes.wait(w1, A, True, 0, None, 0b01))
    r2 = Runner(lambda: kernel.futexes.wait(w2, A, True, 0, None, 0b10))
    key = kernel.futexes.key(waker, A)
    assert wait_until(lambda: kernel.futexes.waiters(key) == 2)
    assert kernel.futexes.wake(waker, A, True, 10, 0b10) == 1
    r2.join()
    assert r1.alive()
    assert kernel.futexes.wake(waker, A, True, 10, 0b01) == 1
    r1.join()


def test_cmp_requeue(kernel: FakeKernel) -> None:
    tasks = _threads(kernel, 4)
    waker = tasks[-1]
    runners = [
        Runner(lambda t=t: kernel.futexes.wait(t, A, True, 0, None)) for t in tasks[:3]
    ]
    key_a = kernel.futexes.key(waker, A)
    key_b = kernel.futexes.key(waker, B)
    assert wait_until(lambda: kernel.futexes.waiters(key_a) == 3)
    with pytest.raises(SyscallError) as e:
        kernel.futexes.requeue(waker, A, B, True, 1, 1, 7)
    assert e.value.errno == errno.EAGAIN
    # One woken, the two others moved to B.
    assert kernel.futexes.requeue(waker, A, B, True, 1, 5, 0) == 3
    assert kernel.futexes.waiters(key_a) == 0
    assert kernel.futexes.waiters(key_b) == 2
    assert kernel.futexes.wake(waker, B, True, 10) == 2
    for r in runners:
        r.join()


def test_wake_op(kernel: FakeKernel) -> None:
    wa, wb, waker = _threads(kernel, 3)
    ra = Runner(lambda: kernel.futexes.wait(wa, A, True, 0, None))
    rb = Runner(lambda: kernel.futexes.wait(wb, B, True, 0, None))
    key_a = kernel.futexes.key(waker, A)
    key_b = kernel.futexes.key(waker, B)
    assert wait_until(
        lambda: (
            kernel.futexes.waiters(key_a) == 1 and kernel.futexes.waiters(key_b) == 1
        )
    )
    # *B += 5 (old value 0); wake B's waiter if the old value was 0.
    encoded = (F.FUTEX_OP_ADD << 28) | (F.FUTEX_OP_CMP_EQ << 24) | (5 << 12) | 0
    assert kernel.futexes.wake_op(waker, A, B, True, 1, 1, encoded) == 2
    assert waker.mm.read_u32(B) == 5
    ra.join()
    rb.join()


def test_pi_lock_handoff(kernel: FakeKernel) -> None:
    owner, waiter = _threads(kernel, 2)
    kernel.futexes.lock_pi(owner, A, True, None, False)
    assert owner.mm.read_u32(A) == owner.tid
    with pytest.raises(SyscallError) as e:
        kernel.futexes.lock_pi(waiter, A, True, None, True)
    assert e.value.errno == errno.EAGAIN
    r = Runner(lambda: kernel.futexes.lock_pi(waiter, A, True, None, False))
    assert wait_until(lambda: owner.mm.read_u32(A) & F.FUTEX_WAITERS)
    assert wait_until(lambda: _waiting(kernel, owner, A))
    with pytest.raises(SyscallError) as e:
        kernel.futexes.unlock_pi(waiter, A, True)
    assert e.value.errno == errno.EPERM
    kernel.futexes.unlock_pi(owner, A, True)
    r.join()
    assert owner.mm.read_u32(A) == waiter.tid | F.FUTEX_WAITERS
    kernel.futexes.unlock_pi(waiter, A, True)
    assert owner.mm.read_u32(A) == 0


def test_pi_owner_exit_hands_lock_on(kernel: FakeKernel) -> None:
    owner, waiter = _threads(kernel, 2)
    kernel.futexes.lock_pi(owner, A, True, None, False)
    r = Runner(lambda: kernel.futexes.lock_pi(waiter, A, True, None, False))
    assert wait_until(lambda: _waiting(kernel, owner, A))
    kernel.futexes.exit_pi_state(owner)
    r.join()
    assert owner.mm.read_u32(A) & F.FUTEX_TID_MASK == waiter.tid


def _robust_list(mm: FakeMM, head: int, entries: list[int], offset: int) -> None:
    # struct robust_list_head {next, futex_offset, list_op_pending}; each
    # entry's first word points at the next, the last back at the head.
    nodes = [*entries, head]
    mm.copy_out(head, struct.pack("<QqQ", nodes[0], offset, 0))
    for i, e in enumerate(entries):
        mm.write_u64(e, nodes[i + 1])


def test_robust_list_marks_owner_died_and_wakes(kernel: FakeKernel) -> None:
    owner, waiter = _threads(kernel, 2)
    mm = owner.mm
    head, entry, offset = 0x3000, 0x3100, 0x10
    futex = entry + offset
    mm.write_u32(futex, owner.tid | F.FUTEX_WAITERS)
    _robust_list(mm, head, [entry], offset)
    owner.robust_list = (head, 24)
    r = Runner(
        lambda: kernel.futexes.wait(
            waiter, futex, False, owner.tid | F.FUTEX_WAITERS, None
        )
    )
    assert wait_until(
        lambda: kernel.futexes.waiters(kernel.futexes.key(owner, futex, False))
    )
    kernel.futexes.exit_robust_list(owner)
    r.join()
    assert mm.read_u32(futex) == F.FUTEX_OWNER_DIED | F.FUTEX_WAITERS


def test_robust_list_leaves_others_locks(kernel: FakeKernel) -> None:
    owner, other = _threads(kernel, 2)
    mm = owner.mm
    head, entry, offset = 0x3000, 0x3100, 0x10
    mm.write_u32(entry + offset, other.tid)
    _robust_list(mm, head, [entry], offset)
    owner.robust_list = (head, 24)
    kernel.futexes.exit_robust_list(owner)
    assert mm.read_u32(entry + offset) == other.tid


def test_robust_list_cycle_is_bounded(kernel: FakeKernel) -> None:
    (owner,) = _threads(kernel, 1)
    mm = owner.mm
    head, entry = 0x3000, 0x3100
    mm.copy_out(head, struct.pack("<QqQ", entry, 0, 0))
    mm.write_u64(entry, entry)  # a loop that never reaches the head
    owner.robust_list = (head, 24)
    kernel.futexes.exit_robust_list(owner)


def test_waitv(kernel: FakeKernel) -> None:
    waiter, waker = _threads(kernel, 2)
    r = Runner(
        lambda: kernel.futexes.waitv(
            waiter, [(A, 0, True), (B, 0, True), (C, 0, True)], None
        )
    )
    assert wait_until(lambda: _waiting(kernel, waker, C))
    assert kernel.futexes.wake(waker, B, True, 1) == 1
    assert r.join() == 1
    assert not _waiting(kernel, waker, A)
    assert not _waiting(kernel, waker, C)


def test_atomic_memory(kernel: FakeKernel) -> None:
    (t,) = _threads(kernel, 1)
    mm = t.mm
    mm.write_u32(A, 10)
    assert atomic_memory.compare_and_swap(mm, A, 10, 11) == 10
    assert atomic_memory.compare_and_swap(mm, A, 10, 12) == 11
    assert mm.read_u32(A) == 11
    assert atomic_memory.fetch_op(mm, A, atomic_memory.OP_ADD, 4) == 11
    assert atomic_memory.fetch_op(mm, A, atomic_memory.OP_OR, 0x100) == 15
    assert atomic_memory.fetch_op(mm, A, atomic_memory.OP_ANDN, 1) == 0x10F
    assert atomic_memory.fetch_op(mm, A, atomic_memory.OP_XOR, 0xF) == 0x10E
    assert atomic_memory.fetch_op(mm, A, atomic_memory.OP_SET, 7) == 0x101
    assert mm.read_u32(A) == 7
    with pytest.raises(SyscallError) as e:
        atomic_memory.compare_and_swap(mm, 16, 0, 1)
    assert e.value.errno == errno.EFAULT
