"""Application page faults: what the sentry does when the platform could not
complete a memory access.

Most accesses never reach the sentry: pmas are mapped into the platform
address space and the host serves them. A fault arrives when a page has no
pma yet (lazily populated anonymous memory, file pages, a fork child's first
touch), when a write hits a page mapped read-only because it is copy-on-write
or a clean shared file page, when the stack grows, or when the access is
really invalid.

The ptrace platform does not say what kind of access faulted; it gives the
address, the instruction pointer and the host's si_code. The access is
inferred as the x86 page-fault error code would have said:

- the fault address is the instruction pointer (or the start of the page an
  instruction at rip runs into): an instruction fetch;
- SEGV_ACCERR from the host on a page the sentry mapped readable: a write
  (reads and fetches of a readable page do not fault on x86);
- SEGV_MAPERR: the page is not mapped in the platform at all. The sentry
  populates it and maps it as permissively as it can without breaking
  copy-on-write; if the access was a write to a copy-on-write page, it comes
  back once more as SEGV_ACCERR and is handled then.
"""

from __future__ import annotations

import logging

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux.mman import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
)
from pkg.errors.syscall_error import SyscallError
from pkg.platform.platform import ACCESS_EXEC, ACCESS_WRITE
from pkg.sentry.mm.core import (
    ANON_CHUNK,
    COW_CHUNK,
    FILE_FAULT_AROUND,
    MMCore,
    Rlimits,
    accessible,
)
from pkg.sentry.mm.vma import Vma

log = logging.getLogger(__name__)

# A fault that the sentry resolves this many times in a row at the same
# place without the application making progress is a bookkeeping bug; the
# task gets SIGSEGV instead of spinning forever.
_MAX_REPEATS = 8

# Result of a fault the application must see: (signo, si_code).
FaultSignal = tuple[int, int]

SEGV_MAPERR: FaultSignal = (S.SIGSEGV, S.SEGV_MAPERR)
SEGV_ACCERR: FaultSignal = (S.SIGSEGV, S.SEGV_ACCERR)
BUS_ADRERR: FaultSignal = (S.SIGBUS, S.BUS_ADRERR)
OOM_KILL: FaultSignal = (S.SIGKILL, S.SI_KERNEL)


class FaultOps(MMCore):
    """FaultOps resolves application page faults."""

    _last_fault: tuple[int, int, int] = (0, 0, 0)

    def note_progress(self) -> None:
        """Records that application code got past its last fault: a task of
        this address space made a system call, so the instruction that
        faulted has completed (or been left). A program that maps files one
        after another at the same address and reads each with the same
        instruction faults at the same (address, rip) every time, and that
        is not a fault that keeps repeating.

        Called without mu, once per system call: a plain store.
        """
        # Unlike a per-task record, a syscall by one thread also clears
        # the record of a sibling thread that really is stuck; that thread
        # then spins for longer before the check catches it.
        self._last_fault = (0, 0, 0)

    def handle_fault(
        self,
        addr: int,
        access: int = 0,
        rip: int = 0,
        host_code: int = 0,
        rl: Rlimits | None = None,
    ) -> FaultSignal | None:
        """Resolves a fault by application code at addr.

        Args:
            addr: the faulting address (si_addr).
            access: the ACCESS_* bits if the platform knows them, else 0.
            rip: the instruction pointer at the fault.
            host_code: the host's si_code (SEGV_MAPERR: nothing mapped there
                in the platform; SEGV_ACCERR: mapped without permission).
            rl: the faulting process's resource limits (stack growth).

        Returns:
            None if the access can now succeed and the application should
            retry it; otherwise (signo, si_code) of the signal to send with
            si_addr = addr.
        """
        with self.mu:
            try:
                result = self._handle_fault_locked(addr, access, rip, host_code, rl)
            except SyscallError:
                # The platform could not map the page (out of host memory or
                # mappings): Linux's out-of-memory fault kills the task.
                log.warning("mm: cannot map the page at %#x; SIGKILL", addr)
                return OOM_KILL
            if result is None:
                last_addr, last_rip, n = self._last_fault
                n = n + 1 if (last_addr, last_rip) == (addr, rip) else 1
                self._last_fault = (addr, rip, n)
                if n > _MAX_REPEATS:
                    log.warning(
                        "mm: fault at %#x (rip %#x) keeps repeating; SIGSEGV",
                        addr,
                        rip,
                    )
                    self._last_fault = (0, 0, 0)
                    return SEGV_ACCERR
            else:
                self._last_fault = (0, 0, 0)
            return result

    def _handle_fault_locked(
        self, addr: int, access: int, rip: int, host_code: int, rl: Rlimits | None
    ) -> FaultSignal | None:
        if not self.min_address <= addr < self.max_address:
            return SEGV_MAPERR
        vma = self.vmas.find(addr)
        if vma is None:
            vma = self._grow_stack_locked(addr, rl)
            if vma is None:
                return SEGV_MAPERR
        page = page_round_down(addr)
        pma = self.pmas.find(addr)

        if access == 0:
            if addr == rip or (rip < addr < rip + 16 and page != page_round_down(rip)):
                access = ACCESS_EXEC
            elif (
                host_code == S.SEGV_ACCERR
                and pma is not None
                and pma.mapped
                and pma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC)
            ):
                access = ACCESS_WRITE
            else:
                access = 0  # unknown: a read, or a write we will see again

        if not accessible(vma.prot):
            return SEGV_ACCERR
        if access & ACCESS_WRITE and not vma.prot & PROT_WRITE:
            return SEGV_ACCERR
        if access & ACCESS_EXEC and not vma.prot & PROT_EXEC:
            return SEGV_ACCERR

        write = bool(access & ACCESS_WRITE)
        try:
            if vma.mappable is None:
                if pma is None:
                    self._populate_locked(vma, *_chunk(vma, page, ANON_CHUNK), False)
            else:
                got = self._populate_locked(
                    vma,
                    page,
                    page + PAGE_SIZE,
                    False,
                    optional_end=min(vma.end, page + FILE_FAULT_AROUND),
                )
                if got <= page:
                    return BUS_ADRERR
            if write:
                # Anonymous pages are copied a chunk at a time (the copies are
                # indistinguishable from the originals); a private file page
                # is copied alone, since its neighbours must keep showing the
                # file until they are written.
                if vma.mappable is None:
                    self._populate_locked(vma, *_chunk(vma, page, COW_CHUNK), True)
                else:
                    self._populate_locked(vma, page, page + PAGE_SIZE, True)
        except SyscallError as e:
            if e.errno == errno.ENOMEM:
                log.warning("mm: out of memory resolving a fault at %#x", addr)
            return BUS_ADRERR if vma.mappable is not None else SEGV_MAPERR
        self._map_range_locked(vma, page, page + PAGE_SIZE)
        pma = self.pmas.find(addr)
        if pma is None or not pma.mapped:
            raise SyscallError(errno.ENOMEM)
        return None


def _chunk(vma: Vma, page: int, size: int) -> tuple[int, int]:
    """Returns the size-aligned span around page, clipped to vma."""
    start = max(page & ~(size - 1), vma.start)
    end = min((page & ~(size - 1)) + size, vma.end)
    return start, end
