"""The platform interface: what runs application code for the sentry.

A platform executes application instructions on behalf of the sentry and hands
back whatever stopped them. The sentry never runs application code itself; it
asks a Context to `switch` into an AddressSpace with a register state, and gets
back an event: a system call, a fault, a signal, or an interrupt.

Registers travel as one fixed-layout state buffer per task (see `State`), so a
switch costs no Python call per register. The buffer layout is shared with the
C++ cores of the platforms:

    [0, 216)        struct user_regs_struct (amd64), as ptrace sees it
    [216, 344)      siginfo_t of the last SIGNAL or FAULT event
    [344, 344+N)    the XSAVE area (N = Platform.fpstate_size)

Implementations: pkg/platform/ptrace (stub processes under PTRACE_SYSEMU).
"""

from __future__ import annotations

import abc
import struct

# Event kinds returned by Context.switch.
EVENT_SYSCALL = 0
EVENT_FAULT = 1
EVENT_SIGNAL = 2
EVENT_INTERRUPT = 3
EVENT_DIED = 4

# Flags for Context.switch.
SWITCH_SET_FPSTATE = 1  # load the XSAVE area from the buffer before running

# Access bits of a fault, as in mmap's PROT_*.
ACCESS_READ = 1
ACCESS_WRITE = 2
ACCESS_EXEC = 4

REGS_SIZE = 216
SIGINFO_OFFSET = 216
SIGINFO_SIZE = 128
FPSTATE_OFFSET = REGS_SIZE + SIGINFO_SIZE

# Indices of the 64-bit words of struct user_regs_struct.
R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8 = range(10)
RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, CS, EFLAGS, RSP, SS = range(10, 21)
FS_BASE, GS_BASE, DS, ES, FS, GS = range(21, 27)
NUM_REGS = 27

# Segment selectors of 64-bit user mode on Linux amd64.
USER_CS = 0x33
USER_DS = 0x2B
# Interrupts enabled, the reserved bit 1 set.
INITIAL_EFLAGS = 0x202

_SIGINFO_HEAD = struct.Struct("=iii4xQ")


class State:
    """State is the register, siginfo and FPU buffer of one task.

    `regs` is a view of the general registers as 64-bit words indexed by the
    module's R* constants; `buf` is the whole buffer handed to the platform.
    """

    __slots__ = ("buf", "fpstate_dirty", "fpstate_valid", "regs")

    def __init__(self, fpstate_size: int) -> None:
        self.buf = bytearray(FPSTATE_OFFSET + fpstate_size)
        self.regs = memoryview(self.buf)[:REGS_SIZE].cast("Q")
        # The XSAVE area in buf must be pushed to the platform on next switch.
        self.fpstate_dirty = False
        # The XSAVE area in buf holds the task's current FPU state.
        self.fpstate_valid = False

    def copy_from(self, other: State) -> None:
        """Copies registers and FPU state from another State."""
        self.buf[:] = other.buf
        self.fpstate_valid = other.fpstate_valid
        self.fpstate_dirty = other.fpstate_valid

    @property
    def fpstate(self) -> memoryview:
        """The XSAVE area."""
        return memoryview(self.buf)[FPSTATE_OFFSET:]

    def siginfo(self) -> tuple[int, int, int, int]:
        """Returns (signo, errno, code, addr) of the last signal or fault."""
        return _SIGINFO_HEAD.unpack_from(self.buf, SIGINFO_OFFSET)

    def siginfo_bytes(self) -> bytes:
        """Returns the raw 128-byte siginfo_t of the last signal or fault."""
        return bytes(self.buf[SIGINFO_OFFSET : SIGINFO_OFFSET + SIGINFO_SIZE])

    def init_user(self, rip: int, rsp: int) -> None:
        """Sets a fresh 64-bit user register state starting at rip."""
        regs = self.regs
        for i in range(NUM_REGS):
            regs[i] = 0
        regs[RIP] = rip
        regs[RSP] = rsp
        regs[CS] = USER_CS
        regs[SS] = USER_DS
        regs[EFLAGS] = INITIAL_EFLAGS
        regs[ORIG_RAX] = (1 << 64) - 1


class AddressSpace(abc.ABC):
    """AddressSpace is a platform address space that application code runs in.

    It only ever maps ranges of the MemoryFile; the sentry's MemoryManager
    decides what is mapped where.
    """

    @abc.abstractmethod
    def map_file(
        self, addr: int, length: int, offset: int, prot: int, precommit: bool = False
    ) -> None:
        """Maps [offset, offset+length) of the MemoryFile at addr, replacing
        whatever is mapped there, with protection prot (PROT_* bits)."""

    @abc.abstractmethod
    def unmap(self, addr: int, length: int) -> None:
        """Removes every mapping in [addr, addr+length)."""

    def protect(self, addr: int, length: int, prot: int) -> None:
        """Changes the protection of [addr, addr+length), all of which is
        mapped. Platforms without a cheaper way need not override this; the
        MemoryManager only calls it where it could also call map_file."""
        raise NotImplementedError

    @abc.abstractmethod
    def release(self) -> None:
        """Releases the address space; it must not be used again."""


class Context(abc.ABC):
    """Context runs one task's application code.

    A Context is used by a single host thread, the task's own; only
    `interrupt` may be called from other threads.
    """

    @abc.abstractmethod
    def switch(self, address_space: AddressSpace, state: State) -> int:
        """Runs application code in address_space from the registers in state
        until it makes a system call, faults, receives a signal, or is
        interrupted. Returns an EVENT_* kind; the registers (and for faults and
        signals the siginfo) are updated in state.

        For EVENT_SYSCALL, regs[ORIG_RAX] holds the syscall number and the
        arguments are in rdi, rsi, rdx, r10, r8, r9; the caller writes the
        result to regs[RAX] before the next switch. For EVENT_FAULT, the
        siginfo's address is the faulting address (see `fault_access`).
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Makes a running or the next `switch` return EVENT_INTERRUPT soon.
        Callable from any thread; spurious interrupts are allowed."""

    @abc.abstractmethod
    def pull_fpstate(self, state: State) -> None:
        """Reads the task's current FPU state into state.fpstate."""

    def prepare(self, address_space: AddressSpace, state: State) -> None:
        """Readies the context to run in address_space before its first
        switch there, keeping the task's registers and FPU state in state.
        An optimisation (execve fills a new address space and then runs in
        it); by default nothing. Raises OSError if the address space is
        gone."""
        del address_space, state

    @abc.abstractmethod
    def release(self) -> None:
        """Releases the context; it must not be used again."""


class Platform(abc.ABC):
    """Platform creates address spaces and contexts."""

    # The lowest and one past the highest address an application may map.
    min_user_address: int
    max_user_address: int
    # The size of the XSAVE area in a State.
    fpstate_size: int

    @abc.abstractmethod
    def new_address_space(self) -> AddressSpace:
        """Returns a new, empty address space."""

    @abc.abstractmethod
    def new_context(self) -> Context:
        """Returns a new context for the calling thread."""

    def new_state(self) -> State:
        """Returns a zeroed State sized for this platform."""
        return State(self.fpstate_size)

    @abc.abstractmethod
    def close(self) -> None:
        """Releases every host resource of the platform."""
