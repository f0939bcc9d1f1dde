"""MemoryManager: an application address space as the sentry sees it.

The MemoryManager owns the vmas (what the application mapped), the pmas (the
MemoryFile pages behind them) and the platform AddressSpace that makes those
pages visible to application code. It is shared by every task of a process
(and by CLONE_VM children). Its parts live one concept per file:

- core.py: state, vmas and pmas, populate, copy-on-write, fork, release;
- syscalls.py: mmap, munmap, mprotect, mremap, brk, madvise, mincore,
  msync, mlock;
- fault.py: application page faults;
- io.py: copy-in and copy-out for system calls;
- procfs.py: /proc/[pid]/maps, smaps and status;
- shm.py: shmdt;
- mappable.py and file_cache.py: file mappings.

Lock order: MemoryManager.mu, then Mappable locks, then MemoryFile locks,
then platform locks.
"""

from __future__ import annotations

from pkg.sentry.mm.core import DEFAULT_STACK_SIZE, STACK_GUARD_GAP, Rlimits
from pkg.sentry.mm.fault import FaultOps, FaultSignal
from pkg.sentry.mm.io import MemoryIO
from pkg.sentry.mm.procfs import ProcfsOps
from pkg.sentry.mm.shm import ShmOps
from pkg.sentry.mm.syscalls import MmapOps, MmapOpts

__all__ = [
    "DEFAULT_STACK_SIZE",
    "STACK_GUARD_GAP",
    "FaultSignal",
    "MemoryManager",
    "MmapOpts",
    "Rlimits",
]


class MemoryManager(MmapOps, FaultOps, MemoryIO, ProcfsOps, ShmOps):
    """MemoryManager implements an application address space.

    Create one with MemoryManager(platform, memory_file); `fork()` returns
    the child's copy, `release()` frees everything when the last task using
    it is gone.
    """

    def fork(self) -> MemoryManager:
        """Returns a copy-on-write copy of this address space for a child
        process (see MMCore.fork)."""
        child = super().fork()
        assert isinstance(child, MemoryManager)
        child.rlimits = self.rlimits
        # The parent's next write faults break copy-on-write sharing, which
        # is progress: a loop that forks faults at the same place every
        # round and must not look like a fault that keeps repeating.
        with self.mu:
            self._last_fault = (0, 0, 0)
        return child

    def vma_access_ok(self, addr: int, access: int) -> bool:
        """Reports whether addr is mapped with every bit of access."""
        with self.mu:
            vma = self.vmas.find(addr)
            return vma is not None and vma.prot & access == access
