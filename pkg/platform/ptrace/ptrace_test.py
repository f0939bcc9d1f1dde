"""Tests of the ptrace platform through its Python wrapper, with real stubs."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from pkg.platform import platform
from pkg.platform.ptrace import ptrace

PAGE = 4096
CODE_ADDR = 0x10000
DATA_ADDR = 0x200000
CODE_OFFSET = 0
DATA_OFFSET = PAGE
DATA_VALUE = 0x0123456789ABCDEF

# mov $39,%eax; syscall; mov %rax,%rdi; mov $39,%eax; syscall
TWO_SYSCALLS = bytes.fromhex("b827000000 0f05 4889c7 b827000000 0f05")
# mov $39,%eax; syscall; mov %rbx,%rdi; mov $39,%eax; syscall
SYSCALL_THEN_RBX = bytes.fromhex("b827000000 0f05 4889df b827000000 0f05")
# mov 0x200000,%rax; mov %rax,%rdi; mov $39,%eax; syscall
READ_DATA = bytes.fromhex("488b042500002000 4889c7 b827000000 0f05")
# mov $39,%eax; syscall; 1: jmp 1b
SYSCALL_THEN_SPIN = bytes.fromhex("b827000000 0f05 ebfe")
# movq %xmm0,%rdi; mov $39,%eax; syscall
XMM0_TO_RDI = bytes.fromhex("66480f7ec7 b827000000 0f05")

SYS_TGKILL = 234

# Offsets in the XSAVE area.
XMM0_OFFSET = 160
XSTATE_BV_OFFSET = 512


class Sandbox:
    """Sandbox is a memory file and a platform over it."""

    def __init__(self) -> None:
        self.memfd = os.memfd_create("ptrace_test")
        os.ftruncate(self.memfd, 16 * PAGE)
        os.pwrite(self.memfd, struct.pack("<Q", DATA_VALUE), DATA_OFFSET)
        self.platform = ptrace.PtracePlatform(self.memfd)

    def space_with_code(self, code: bytes) -> ptrace.PtraceAddressSpace:
        """Returns an address space with code mapped R+X at CODE_ADDR."""
        os.pwrite(self.memfd, code, CODE_OFFSET)
        address_space = self.platform.new_address_space()
        address_space.map_file(
            CODE_ADDR, PAGE, CODE_OFFSET, mmap.PROT_READ | mmap.PROT_EXEC
        )
        return address_space

    def state_at(self, rip: int) -> platform.State:
        state = self.platform.new_state()
        state.init_user(rip, 0)
        return state

    def close(self) -> None:
        self.platform.close()
        os.close(self.memfd)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    s = Sandbox()
    yield s
    s.close()


def thread_state(tid: int) -> str:
    """Returns the state letter of host thread tid."""
    with open(f"/proc/{tid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


def children_of(pid: int) -> list[int]:
    """Returns the pids of the host processes whose parent is pid."""
    children = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(name))
    return children


def test_properties(sandbox: Sandbox) -> None:
    p = sandbox.platform
    assert p.min_user_address >= PAGE
    assert p.max_user_address % PAGE == 0
    assert p.fpstate_size >= 512
    assert isinstance(p, platform.Platform)


def test_syscall_round_trip(sandbox: Sandbox) -> None:
    address_space = sandbox.space_with_code(TWO_SYSCALLS)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)

    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.ORIG_RAX] == 39
    assert state.regs[platform.RIP] == CODE_ADDR + 7

    state.regs[platform.RAX] = 1234
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RIP] == CODE_ADDR + 17
    assert state.regs[platform.RDI] == 1234
    context.release()
    address_space.release()


def test_registers_besides_rax_reach_the_stub(sandbox: Sandbox) -> None:
    # After a system call stop the context writes only rax when nothing else
    # changed; any other change must still reach the stub thread.
    address_space = sandbox.space_with_code(SYSCALL_THEN_RBX)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)

    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    state.regs[platform.RAX] = 0
    state.regs[platform.RBX] = 777
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RDI] == 777

    # Back to the first instruction: rip changed, rax did not.
    state.regs[platform.RIP] = CODE_ADDR
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RIP] == CODE_ADDR + 7
    context.release()
    address_space.release()


@pytest.mark.parametrize("errno_value", [512, 513, 514, 516])
def test_restart_errno_in_rax_is_not_restarted_by_the_host(
    sandbox: Sandbox, errno_value: int
) -> None:
    # An ERESTART code in rax at a system call stop must not make the host
    # rewind rip when the stub resumes, even with a signal pending then (the
    # host's restart logic runs when it has looked for signals): the value
    # reaches the application as is.
    address_space = sandbox.space_with_code(TWO_SYSCALLS)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)

    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    libc = ctypes.CDLL(None, use_errno=True)
    assert (
        libc.syscall(SYS_TGKILL, address_space.pid, context.stub_tid, signal.SIGWINCH)
        == 0
    )
    state.regs[platform.RAX] = (1 << 64) - errno_value
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RIP] == CODE_ADDR + 17
    assert state.regs[platform.RDI] == (1 << 64) - errno_value
    context.release()
    address_space.release()


def test_fault_then_map(sandbox: Sandbox) -> None:
    address_space = sandbox.space_with_code(READ_DATA)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)

    assert context.switch(address_space, state) == platform.EVENT_FAULT
    signo, _, code, addr = state.siginfo()
    assert (signo, code, addr) == (11, 1, DATA_ADDR)  # SIGSEGV, SEGV_MAPERR
    assert state.regs[platform.RIP] == CODE_ADDR

    address_space.map_file(DATA_ADDR, PAGE, DATA_OFFSET, mmap.PROT_READ)
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RDI] == DATA_VALUE
    context.release()


def test_interrupt_from_another_thread(sandbox: Sandbox) -> None:
    address_space = sandbox.space_with_code(SYSCALL_THEN_SPIN)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    tid = context.stub_tid

    def interrupt_when_running() -> None:
        while thread_state(tid) != "R":
            time.sleep(0)
        context.interrupt()

    interrupter = threading.Thread(target=interrupt_when_running)
    interrupter.start()
    kind = context.switch(address_space, state)
    interrupter.join()
    assert kind == platform.EVENT_INTERRUPT
    assert state.regs[platform.RIP] == CODE_ADDR + 7

    context.interrupt()
    assert context.switch(address_space, state) == platform.EVENT_INTERRUPT
    context.release()


def test_prepare_moves_the_stub_thread_and_keeps_the_state(
    sandbox: Sandbox,
) -> None:
    first = sandbox.space_with_code(TWO_SYSCALLS)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)
    assert context.switch(first, state) == platform.EVENT_SYSCALL
    old_tid = context.stub_tid

    second = sandbox.platform.new_address_space()
    context.prepare(second, state)
    assert state.fpstate_valid and state.fpstate_dirty
    new_tid = context.stub_tid
    assert os.path.exists(f"/proc/{second.pid}/task/{new_tid}")
    assert not os.path.exists(f"/proc/{first.pid}/task/{old_tid}")
    # Mapped through the context's own stub thread, then run there.
    second.map_file(CODE_ADDR, PAGE, CODE_OFFSET, mmap.PROT_READ | mmap.PROT_EXEC)
    state.init_user(CODE_ADDR, 0)
    assert context.switch(second, state) == platform.EVENT_SYSCALL
    assert context.stub_tid == new_tid
    # Back into the first address space: a new stub thread there.
    state.init_user(CODE_ADDR, 0)
    assert context.switch(first, state) == platform.EVENT_SYSCALL
    assert os.path.exists(f"/proc/{first.pid}/task/{context.stub_tid}")
    context.release()
    first.release()
    second.release()


def test_fpstate_pull_and_push(sandbox: Sandbox) -> None:
    address_space = sandbox.space_with_code(XMM0_TO_RDI)
    context = sandbox.platform.new_context()
    state = sandbox.state_at(CODE_ADDR)
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert not state.fpstate_valid

    context.pull_fpstate(state)
    assert state.fpstate_valid
    value = 0x1122334455667788
    fpstate = state.fpstate
    fpstate[XMM0_OFFSET : XMM0_OFFSET + 8] = struct.pack("<Q", value)
    if len(fpstate) > XSTATE_BV_OFFSET:
        (xstate_bv,) = struct.unpack_from("<Q", fpstate, XSTATE_BV_OFFSET)
        struct.pack_into("<Q", fpstate, XSTATE_BV_OFFSET, xstate_bv | 2)
    state.fpstate_dirty = True

    state.init_user(CODE_ADDR, 0)
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    assert state.regs[platform.RDI] == value
    assert not state.fpstate_dirty
    assert not state.fpstate_valid
    context.release()


def test_contexts_on_threads_share_an_address_space(sandbox: Sandbox) -> None:
    address_space = sandbox.space_with_code(TWO_SYSCALLS)
    results: dict[int, tuple[int, int]] = {}

    def run(i: int) -> None:
        context = sandbox.platform.new_context()
        try:
            state = sandbox.state_at(CODE_ADDR)
            kind = context.switch(address_space, state)
            results[i] = (kind, context.stub_tid)
        finally:
            context.release()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0][0] == results[1][0] == platform.EVENT_SYSCALL
    assert results[0][1] != results[1][1]


def test_errors_are_oserror(sandbox: Sandbox) -> None:
    address_space = sandbox.platform.new_address_space()
    with pytest.raises(OSError) as info:
        address_space.map_file(
            sandbox.platform.max_user_address, PAGE, 0, mmap.PROT_READ
        )
    assert info.value.errno == errno.EINVAL

    with pytest.raises(OSError) as info:
        address_space.protect(DATA_ADDR, PAGE, mmap.PROT_READ)
    assert info.value.errno == errno.ENOMEM
    assert "mprotect" in str(info.value)

    address_space.release()
    with pytest.raises(ProcessLookupError):
        address_space.unmap(DATA_ADDR, PAGE)


def test_no_process_left_after_close() -> None:
    s = Sandbox()
    address_space = s.space_with_code(TWO_SYSCALLS)
    context = s.platform.new_context()
    state = s.state_at(CODE_ADDR)
    assert context.switch(address_space, state) == platform.EVENT_SYSCALL
    master = s.platform.master_pid
    # The other child, if any, is the spare address space.
    stubs = children_of(master)
    assert address_space.pid in stubs
    assert children_of(os.getpid()) == [master]

    # Neither the context nor the address space is released first.
    s.close()
    assert children_of(os.getpid()) == []
    assert not os.path.exists(f"/proc/{master}")
    for pid in stubs:
        assert not os.path.exists(f"/proc/{pid}")
    assert context.switch(address_space, state) == platform.EVENT_DIED
