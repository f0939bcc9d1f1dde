"""MemoryManager over the real ptrace platform: faults and fork.

Application code runs in real stub processes; the test plays the task run
loop, handing every fault to MemoryManager.handle_fault with only what the
ptrace platform reports (address, rip, host si_code).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from pkg.abi.linux import signal as S
from pkg.abi.linux.mman import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE
from pkg.platform import platform as P
from pkg.platform.ptrace import ptrace
from pkg.sentry.mm.memory_manager import MemoryManager, MmapOpts
from pkg.sentry.pgalloc.memory_file import MemoryFile

CODE = 0x10000
DATA = 0x200000
RW = PROT_READ | PROT_WRITE


def store_then_getpid(value: int, addr: int) -> bytes:
    """movabs $value,%rax; movabs %rax,addr; mov $39,%eax; syscall"""
    return (
        b"\x48\xb8"
        + struct.pack("<Q", value)
        + b"\x48\xa3"
        + struct.pack("<Q", addr)
        + b"\xb8\x27\x00\x00\x00\x0f\x05"
    )


def load_then_getpid(addr: int) -> bytes:
    """movabs addr,%rax; mov %rax,%rdi; mov $39,%eax; syscall"""
    return (
        b"\x48\xa1"
        + struct.pack("<Q", addr)
        + b"\x48\x89\xc7\xb8\x27\x00\x00\x00\x0f\x05"
    )


class Machine:
    """Machine is a MemoryFile, a ptrace platform and a context."""

    def __init__(self) -> None:
        self.mf = MemoryFile(size=1 << 32)
        self.platform = ptrace.PtracePlatform(self.mf.fd)
        self.context = self.platform.new_context()
        self.faults = 0

    def new_mm(self) -> MemoryManager:
        mm = MemoryManager(self.platform, self.mf)
        mm.set_layout()
        return mm

    def run(
        self, mm: MemoryManager, code: bytes, max_faults: int = 64
    ) -> tuple[int, int] | None:
        """Runs code at CODE until a system call (None) or a signal the mm
        says the application gets ((signo, si_code))."""
        mm.copy_out_force(CODE, code)
        state = self.platform.new_state()
        state.init_user(CODE, 0)
        for _ in range(max_faults):
            event = self.context.switch(mm.address_space, state)
            if event == P.EVENT_SYSCALL:
                return None
            assert event == P.EVENT_FAULT, event
            self.faults += 1
            _, _, code_, addr = state.siginfo()
            sig = mm.handle_fault(addr, 0, state.regs[P.RIP], code_)
            if sig is not None:
                return sig
        raise AssertionError("fault loop did not converge")

    def close(self) -> None:
        self.context.release()
        self.platform.close()
        self.mf.close()


@pytest.fixture
def machine() -> Iterator[Machine]:
    m = Machine()
    yield m
    m.close()


def map_code_and_data(mm: MemoryManager, data_prot: int = RW) -> None:
    mm.mmap(
        MmapOpts(length=PAGE_SIZE, prot=PROT_READ | PROT_EXEC, addr=CODE, fixed=True)
    )
    mm.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=data_prot, addr=DATA, fixed=True))


def test_fork_is_copy_on_write_in_real_stubs(machine: Machine) -> None:
    parent = machine.new_mm()
    map_code_and_data(parent)
    assert machine.run(parent, store_then_getpid(0xAAAA, DATA)) is None

    child = parent.fork()
    assert machine.run(child, store_then_getpid(0xBBBB, DATA)) is None
    assert parent.read_u64(DATA) == 0xAAAA
    assert child.read_u64(DATA) == 0xBBBB

    assert machine.run(parent, store_then_getpid(0xCCCC, DATA)) is None
    assert parent.read_u64(DATA) == 0xCCCC
    assert child.read_u64(DATA) == 0xBBBB
    child.release()
    parent.release()


def test_write_to_read_only_page_is_accerr(machine: Machine) -> None:
    mm = machine.new_mm()
    map_code_and_data(mm, PROT_READ)
    assert machine.run(mm, load_then_getpid(DATA)) is None
    sig = machine.run(mm, store_then_getpid(1, DATA + 8))
    assert sig == (S.SIGSEGV, S.SEGV_ACCERR)
    mm.release()


def test_unmapped_access_is_maperr(machine: Machine) -> None:
    mm = machine.new_mm()
    map_code_and_data(mm)
    assert machine.run(mm, load_then_getpid(DATA + 64 * PAGE_SIZE)) == (
        S.SIGSEGV,
        S.SEGV_MAPERR,
    )
    mm.release()


def test_lazily_populated_anonymous_memory(machine: Machine) -> None:
    mm = machine.new_mm()
    map_code_and_data(mm)
    big = mm.mmap(MmapOpts(length=1 << 30, prot=RW, noreserve=True))
    committed = machine.mf.committed
    for i in range(8):
        assert machine.run(mm, store_then_getpid(i + 1, big + i * (64 << 20))) is None
    assert machine.mf.committed - committed < (1 << 20)
    assert mm.read_u64(big + 7 * (64 << 20)) == 8
    mm.release()
