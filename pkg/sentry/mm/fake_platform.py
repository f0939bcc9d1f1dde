"""A fake platform for MemoryManager tests: an MMU over the MemoryFile.

FakeAddressSpace keeps a page table (page -> MemoryFile offset and
protection) built from map_file, unmap and protect, and `access` performs a
load or store through it exactly as application code under the ptrace
platform would: it faults with SEGV_MAPERR where nothing is mapped and
SEGV_ACCERR where the protection forbids the access, and reports only the
address and the host si_code, never the access type. `App` drives the
fault-and-retry loop the task run loop implements.
"""

from __future__ import annotations

import errno

from pkg.abi.linux import signal as S
from pkg.abi.linux.mman import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE
from pkg.platform import platform
from pkg.sentry.pgalloc.memory_file import MemoryFile


class Fault(Exception):
    """Fault is a memory access the fake MMU refused."""

    def __init__(self, addr: int, code: int) -> None:
        super().__init__(f"fault at {addr:#x} code {code}")
        self.addr = addr
        self.code = code


class FakeAddressSpace(platform.AddressSpace):
    """FakeAddressSpace is a page table over the MemoryFile."""

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf
        self.pages: dict[int, tuple[int, int]] = {}
        self.calls = 0
        self.released = False
        # Make map_file fail with ENOMEM, as a stub out of mappings does.
        self.fail_maps = False

    def map_file(
        self, addr: int, length: int, offset: int, prot: int, precommit: bool = False
    ) -> None:
        assert addr % PAGE_SIZE == 0 and length % PAGE_SIZE == 0 and length > 0
        self.calls += 1
        if self.fail_maps:
            raise OSError(errno.ENOMEM, "out of mappings")
        for i in range(0, length, PAGE_SIZE):
            self.pages[(addr + i) // PAGE_SIZE] = (offset + i, prot)

    def unmap(self, addr: int, length: int) -> None:
        self.calls += 1
        first = addr // PAGE_SIZE
        last = (addr + length) // PAGE_SIZE
        if last - first > len(self.pages):
            for p in [p for p in self.pages if first <= p < last]:
                del self.pages[p]
        else:
            for p in range(first, last):
                self.pages.pop(p, None)

    def protect(self, addr: int, length: int, prot: int) -> None:
        self.calls += 1
        for p in range(addr // PAGE_SIZE, (addr + length) // PAGE_SIZE):
            offset, _ = self.pages[p]  # mprotect fails on unmapped pages
            self.pages[p] = (offset, prot)

    def release(self) -> None:
        self.released = True
        self.pages.clear()

    def access(
        self, addr: int, length: int, data: bytes | None = None, exec_: bool = False
    ) -> bytes:
        """Reads length bytes at addr, or writes data there; raises Fault."""
        out = bytearray()
        pos = 0
        while pos < length:
            a = addr + pos
            entry = self.pages.get(a // PAGE_SIZE)
            if entry is None:
                raise Fault(a, S.SEGV_MAPERR)
            offset, prot = entry
            need = PROT_EXEC if exec_ else PROT_WRITE if data is not None else 0
            if (need and not prot & need) or not prot & (PROT_READ | PROT_WRITE):
                raise Fault(a, S.SEGV_ACCERR)
            n = min(length - pos, PAGE_SIZE - a % PAGE_SIZE)
            off = offset + a % PAGE_SIZE
            if data is not None:
                self.mf.view[off : off + n] = data[pos : pos + n]
            else:
                out += self.mf.view[off : off + n]
            pos += n
        return bytes(out)


class FakePlatform(platform.Platform):
    """FakePlatform hands out FakeAddressSpaces."""

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf
        self.min_user_address = 0x10000
        self.max_user_address = 0x7FFFFFFFE000
        self.fpstate_size = 0
        self.spaces: list[FakeAddressSpace] = []

    def new_address_space(self) -> FakeAddressSpace:
        space = FakeAddressSpace(self.mf)
        self.spaces.append(space)
        return space

    def new_context(self) -> platform.Context:
        raise NotImplementedError

    def close(self) -> None:
        pass


class App:
    """App runs loads and stores of an application against a MemoryManager,
    resolving faults as the task run loop does.

    Raises Signal when the MemoryManager says the application must get a
    signal.
    """

    class Signal(Exception):
        """Signal is what the application would receive."""

        def __init__(self, signo: int, code: int, addr: int) -> None:
            super().__init__(f"signal {signo} code {code} at {addr:#x}")
            self.signo = signo
            self.code = code
            self.addr = addr

    def __init__(self, mm: object) -> None:
        self.mm = mm
        self.faults = 0

    def _run(
        self, addr: int, length: int, data: bytes | None, exec_: bool = False
    ) -> bytes:
        for _ in range(32):
            try:
                return self.mm.address_space.access(  # type: ignore[attr-defined]
                    addr, length, data, exec_
                )
            except Fault as f:
                self.faults += 1
                rip = f.addr if exec_ else 0x1000
                sig = self.mm.handle_fault(  # type: ignore[attr-defined]
                    f.addr, rip=rip, host_code=f.code
                )
                if sig is not None:
                    raise App.Signal(sig[0], sig[1], f.addr) from None
        raise AssertionError("fault loop did not converge")

    def read(self, addr: int, length: int) -> bytes:
        """Loads length bytes at addr."""
        return self._run(addr, length, None)

    def write(self, addr: int, data: bytes) -> None:
        """Stores data at addr."""
        self._run(addr, len(data), data)

    def execute(self, addr: int) -> None:
        """Fetches an instruction at addr."""
        self._run(addr, 1, None, exec_=True)
