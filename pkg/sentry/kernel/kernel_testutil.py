"""Fakes for unit tests of the kernel package: a kernel without a platform,
an address space backed by a bytearray, and processes of real Tasks whose
run loops the tests drive by hand on ordinary threads."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.kernel.futex import FutexManager
from pkg.sentry.kernel.kernel import KernelConfig
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.sched_stats import KernelStats
from pkg.sentry.kernel.sessions import join_process_group_locked, new_session_locked
from pkg.sentry.kernel.signals import SignalHandlers, SigpendingAccount
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_set import TaskSet
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.timers import CPUTimerTicker, TimerQueue


class FakeMemoryFile:
    """FakeMemoryFile is the `mf` of a FakeMM: one bytearray."""

    def __init__(self, size: int) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)


class FakeVma:
    """FakeVma is the one private, anonymous mapping of a FakeMM."""

    private = True
    mappable = None
    start = 0
    offset = 0


class FakeVmas:
    """FakeVmas finds the FakeVma at any mapped address."""

    def __init__(self, size: int) -> None:
        self._size = size

    def find(self, addr: int) -> FakeVma | None:
        return FakeVma() if 4096 <= addr < self._size else None


class FakeMM:
    """FakeMM is an address space where every address from 4096 to `size`
    maps the same offset of a FakeMemoryFile, readable and writable."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.mu = threading.Lock()
        self.mf = FakeMemoryFile(size)
        self.vmas = FakeVmas(size)
        self.max_address = size
        self.users = 1

    def _ranges_locked(
        self, addr: int, length: int, access: int, force: bool = False
    ) -> tuple[list[tuple[int, int]], int]:
        if addr < 4096 or addr + length > self.max_address:
            return [], 0
        return [(addr, length)], length

    def copy_in(self, addr: int, length: int) -> bytes:
        if addr < 4096 or addr + length > self.max_address:
            raise SyscallError(errno.EFAULT)
        return bytes(self.mf.buf[addr : addr + length])

    def copy_out(self, addr: int, data: bytes) -> None:
        if addr < 4096 or addr + len(data) > self.max_address:
            raise SyscallError(errno.EFAULT)
        self.mf.buf[addr : addr + len(data)] = data

    def read_u32(self, addr: int) -> int:
        return struct.unpack("<I", self.copy_in(addr, 4))[0]

    def write_u32(self, addr: int, value: int) -> None:
        self.copy_out(addr, struct.pack("<I", value & 0xFFFFFFFF))

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.copy_in(addr, 8))[0]

    def write_u64(self, addr: int, value: int) -> None:
        self.copy_out(addr, struct.pack("<Q", value))


class FakeKernel:
    """FakeKernel has what signal delivery, timers and futexes use."""

    def __init__(self) -> None:
        self.tasks = TaskSet()
        self.futexes = FutexManager()
        self.sigpending = SigpendingAccount()
        self.timer_queue = TimerQueue()
        self.cpu_timers = CPUTimerTicker(self.timer_queue)
        self.stats = KernelStats()
        self.init_tg: ThreadGroup | None = None
        # The defaults of a sandbox's configuration (no host networking).
        self.config = KernelConfig()

    def new_process(
        self,
        threads: int = 1,
        parent: ThreadGroup | None = None,
        mm: FakeMM | None = None,
    ) -> ThreadGroup:
        """Returns a process of `threads` Tasks that are not running."""
        mm = mm or FakeMM()
        with self.tasks.mu:
            tgid = self.tasks.allocate_id()
        tg = ThreadGroup(self, tgid, SignalHandlers(), LimitSet(), parent)
        with self.tasks.mu:
            if parent is not None:
                parent.children.append(tg)
                assert parent.process_group is not None
                join_process_group_locked(self.tasks, tg, parent.process_group)
            else:
                new_session_locked(self.tasks, tg)
        for i in range(threads):
            with self.tasks.mu:
                tid = tgid if i == 0 else self.tasks.allocate_id()
            t = Task(self, tid, tg, mm, None, None, root_credentials(), None, b"t")
            tg.tasks.append(t)
            if i == 0:
                tg.leader = t
            with self.tasks.mu:
                self.tasks.tasks[tid] = t
        with self.tasks.mu:
            self.tasks.thread_groups[tgid] = tg
        return tg

    def close(self) -> None:
        self.timer_queue.close()


class Runner:
    """Runner runs a function of a task on a thread and keeps its result."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as e:
            self.error = e

    def join(self, timeout: float = 10.0) -> object:
        """Waits for the function and returns its result (or raises)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.result

    def alive(self) -> bool:
        """Reports whether the function is still running."""
        return self.thread.is_alive()


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Polls cond until it holds or timeout seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.001)
    return cond()
