"""Detaching System V shared memory (shmdt(2)) from an address space.

shmat is an ordinary shared mapping of the segment's pages (see
pkg/sentry/kernel/ipc/shm.py); only shmdt needs to know which vmas came from
one attach, which is what this file finds.
"""

from __future__ import annotations

from collections.abc import Callable

from pkg.abi.linux.mman import page_round_up
from pkg.sentry.mm.core import MMCore


class ShmOps(MMCore):
    """ShmOps implements the address space side of shmdt(2)."""

    def detach_segment(self, addr: int, segment_size: Callable[[object], int]) -> bool:
        """Unmaps the segment attached at addr, as ipc/shm.c's shmdt does:
        the first vma at or after addr that maps a segment at the offset
        addr would give it names the segment, and every vma of that segment
        within its size from addr is unmapped.

        Args:
            addr: the address shmat returned (page-aligned).
            segment_size: returns the size of the segment a vma's file
                reference belongs to, or -1 if it is not a segment.

        Returns:
            False if no segment is attached there (shmdt fails with EINVAL).
        """
        try:
            with self.mu:
                found: object | None = None
                limit = 0
                vma = self.vmas.first_at_or_after(addr)
                while vma is not None and (found is None or vma.end <= limit):
                    nxt = self.vmas.first_at_or_after(vma.end)
                    if (
                        vma.start >= addr
                        and vma.file is not None
                        and vma.start - addr == vma.offset
                        and (found is None or vma.file is found)
                    ):
                        size = segment_size(vma.file)
                        if size >= 0:
                            if found is None:
                                found = vma.file
                                limit = addr + page_round_up(size)
                            self._unmap_locked(vma.start, vma.end)
                    vma = nxt
                return found is not None
        finally:
            self._drop_deferred()
