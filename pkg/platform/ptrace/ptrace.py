"""The ptrace platform: application code in stub processes under PTRACE_SYSEMU.

A thin wrapper over the `_ptrace` C++ core (see platform.h beside this file
for the process and thread model). Each Context is traced by the host thread
that first switches it into an address space; that thread must call
`release()` before it ends, or the exit of the tracer thread kills the whole
stub process (PTRACE_O_EXITKILL).

Constraints on the rest of the sentry: never call os.wait() or
os.waitpid(-1, ...) (any thread of the tracer's process may consume the ptrace
stops of the stubs), keep the MemoryFile descriptor open at its number (the
stubs share the descriptor table and map it by number), and install no
SIGCHLD handler (every ptrace stop would signal the sentry).

The wrapper is on the path of every application system call: it adds one
attribute test and two attribute stores to the C++ switch.
"""

from __future__ import annotations

from pkg.platform import platform
from pkg.platform.ptrace import _ptrace


class PtraceAddressSpace(platform.AddressSpace):
    """PtraceAddressSpace is one stub process."""

    __slots__ = ("_as",)

    def __init__(self, address_space: _ptrace.AddressSpace) -> None:
        self._as = address_space

    def map_file(
        self, addr: int, length: int, offset: int, prot: int, precommit: bool = False
    ) -> None:
        self._as.map_file(addr, length, offset, prot, precommit)

    def unmap(self, addr: int, length: int) -> None:
        self._as.unmap(addr, length)

    def protect(self, addr: int, length: int, prot: int) -> None:
        """Changes the protection of [addr, addr+length) to prot."""
        self._as.protect(addr, length, prot)

    def release(self) -> None:
        self._as.release()

    @property
    def pid(self) -> int:
        """The host pid of the stub process."""
        return self._as.pid


class PtraceContext(platform.Context):
    """PtraceContext runs one task in a stub thread it traces."""

    __slots__ = ("_context",)

    def __init__(self, context: _ptrace.Context) -> None:
        self._context = context

    def switch(
        self, address_space: platform.AddressSpace, state: platform.State
    ) -> int:
        # address_space must be a PtraceAddressSpace; no check on this path.
        core = address_space._as  # type: ignore[attr-defined]
        if state.fpstate_dirty:
            kind = self._context.switch(core, state.buf, platform.SWITCH_SET_FPSTATE)
            state.fpstate_dirty = False
        else:
            kind = self._context.switch(core, state.buf, 0)
        state.fpstate_valid = False
        return kind

    def interrupt(self) -> None:
        self._context.interrupt()

    def prepare(
        self, address_space: platform.AddressSpace, state: platform.State
    ) -> None:
        """Moves the context's stub thread into address_space now (see
        Context::Prepare): the sentry's calls that map memory there are
        then injected by this thread without the platform thread's help.
        The FPU state is read first and pushed again at the next switch."""
        if not state.fpstate_valid:
            self._context.pull_fpstate(state.buf)
            state.fpstate_valid = True
        state.fpstate_dirty = True
        self._context.prepare(address_space._as)  # type: ignore[attr-defined]

    def pull_fpstate(self, state: platform.State) -> None:
        self._context.pull_fpstate(state.buf)
        state.fpstate_valid = True

    def release(self) -> None:
        self._context.release()

    @property
    def stub_tid(self) -> int:
        """The host thread id of the current stub thread, or 0."""
        return self._context.stub_tid


class PtracePlatform(platform.Platform):
    """PtracePlatform runs application code in ptrace stub processes.

    Args:
      memory_file_fd: the MemoryFile descriptor. Stubs share the sentry's
        descriptor table and map it by number, so it must stay open at that
        number until close().
      pin_stub_threads: keep each stub thread on its tracer's current CPU.
      spare_address_spaces: how many stub processes to keep ready for
        new_address_space (see platform.h).
    """

    def __init__(
        self,
        memory_file_fd: int,
        *,
        pin_stub_threads: bool = True,
        spare_address_spaces: int = 1,
    ) -> None:
        self._platform = _ptrace.Platform(
            memory_file_fd,
            pin_stub_threads=pin_stub_threads,
            spare_address_spaces=spare_address_spaces,
        )
        self.min_user_address = self._platform.min_user_address
        self.max_user_address = self._platform.max_user_address
        self.fpstate_size = self._platform.fpstate_size

    def new_address_space(self) -> PtraceAddressSpace:
        return PtraceAddressSpace(self._platform.new_address_space())

    def new_context(self) -> PtraceContext:
        return PtraceContext(self._platform.new_context())

    def close(self) -> None:
        self._platform.close()

    @property
    def master_pid(self) -> int:
        """The host pid of the master stub process."""
        return self._platform.master_pid
