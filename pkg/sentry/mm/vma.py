"""The two layers of a MemoryManager: vmas and pmas.

A Vma is what the application sees: a range of its address space with
permissions and a backing (anonymous memory, or a range of a Mappable file).
A Pma ("platform mapping area") is what backs part of a vma right now: a
range of the MemoryFile on which the pma holds one reference, possibly mapped
into the platform address space. Pmas appear as the application (or the
sentry, copying in or out) touches memory, and disappear on munmap,
madvise(MADV_DONTNEED) and invalidation by the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.mm.mappable import Mappable, MappingIdentity, RefCounted
    from pkg.sentry.mm.mempolicy import MemPolicy

# Vma.lock values.
LOCK_NONE = 0
LOCK_ON = 1  # mlock: populated and locked
LOCK_ONFAULT = 2  # mlock2(MLOCK_ONFAULT): locked as pages are touched

# Vma.advice bits: what madvise recorded, for /proc/[pid]/smaps VmFlags.
ADV_SEQ = 1  # MADV_SEQUENTIAL ("sr")
ADV_RAND = 2  # MADV_RANDOM ("rr")
ADV_HUGEPAGE = 4  # MADV_HUGEPAGE ("hg")
ADV_NOHUGEPAGE = 8  # MADV_NOHUGEPAGE ("nh")
ADV_DONTDUMP = 16  # MADV_DONTDUMP ("dd")
ADV_MERGEABLE = 32  # MADV_MERGEABLE ("mg")


@dataclass(slots=True, eq=False)
class Vma:
    """Vma is one application-visible mapping."""

    start: int
    end: int
    # Protection the application asked for (PROT_* bits).
    prot: int
    # The most mprotect may grant (a read-only file caps PROT_WRITE).
    max_prot: int
    # MAP_PRIVATE: writes are never seen by others.
    private: bool
    growsdown: bool = False
    # The file this range maps, or None for private anonymous memory.
    mappable: Mappable | None = None
    # Offset into mappable of `start`.
    offset: int = 0
    # A reference that keeps the mapped file alive (held by this vma).
    file: RefCounted | None = None
    # How /proc/[pid]/maps names the file.
    identity: MappingIdentity | None = None
    # What /proc/self/maps calls an anonymous vma: "[heap]", "[stack]"...
    name: str = ""
    dontfork: bool = False
    wipeonfork: bool = False
    lock: int = LOCK_NONE
    advice: int = 0
    # MAP_NORESERVE: not counted against overcommit (smaps "nr").
    noreserve: bool = False
    # Counted as committed memory (VM_ACCOUNT, smaps "ac"): private and
    # writable at some point.
    accounted: bool = False
    # The NUMA policy mbind(2) gave this range; None for the task's.
    mempolicy: MemPolicy | None = None

    @property
    def anonymous(self) -> bool:
        """Reports whether this is private anonymous memory."""
        return self.mappable is None

    def split(self, addr: int) -> Vma:
        """Shortens this vma to end at addr and returns the rest. The caller
        takes the new vma's file reference."""
        tail = replace(self, start=addr, offset=self.offset + (addr - self.start))
        self.end = addr
        return tail

    def copy(self) -> Vma:
        """Returns an identical vma (without taking references)."""
        return replace(self)

    def can_merge(self, nxt: Vma) -> bool:
        """Reports whether nxt, which starts where this vma ends, can be
        merged into it (as vma_merge allows)."""
        if self.end != nxt.start:
            return False
        if (
            self.prot != nxt.prot
            or self.max_prot != nxt.max_prot
            or self.private != nxt.private
            or self.growsdown != nxt.growsdown
            or self.mappable is not nxt.mappable
            or self.file is not nxt.file
            or self.name != nxt.name
            or self.dontfork != nxt.dontfork
            or self.wipeonfork != nxt.wipeonfork
            or self.lock != nxt.lock
            or self.advice != nxt.advice
            or self.noreserve != nxt.noreserve
            or self.accounted != nxt.accounted
            or self.mempolicy != nxt.mempolicy
        ):
            return False
        return self.mappable is None or (
            self.offset + (self.end - self.start) == nxt.offset
        )

    def file_offset(self, addr: int) -> int:
        """Returns the mappable offset mapped at addr."""
        return self.offset + (addr - self.start)


@dataclass(slots=True, eq=False)
class Pma:
    """Pma backs [start, end) of the address space with MemoryFile pages."""

    start: int
    end: int
    # Offset in the MemoryFile of `start`; the pma holds one reference on
    # [file_offset, file_offset + end - start).
    file_offset: int
    # The pages belong to this address space's private memory (anonymous
    # pages, or private copies of file pages): fork shares them copy-on-write.
    private: bool
    # The pages may be written in place. False for copy-on-write pages and
    # for file pages not yet translated for write.
    writable: bool
    # The protection it is mapped with in the platform address space, if
    # mapped (see `mapped`).
    prot: int = 0
    mapped: bool = False

    def split(self, addr: int) -> Pma:
        """Shortens this pma to end at addr and returns the rest (the
        MemoryFile reference is split with it)."""
        tail = Pma(
            start=addr,
            end=self.end,
            file_offset=self.file_offset + (addr - self.start),
            private=self.private,
            writable=self.writable,
            prot=self.prot,
            mapped=self.mapped,
        )
        self.end = addr
        return tail

    def can_merge(self, nxt: Pma) -> bool:
        """Reports whether nxt, which starts where this pma ends, continues
        it exactly."""
        return (
            self.end == nxt.start
            and self.file_offset + (self.end - self.start) == nxt.file_offset
            and self.private == nxt.private
            and self.writable == nxt.writable
            and self.prot == nxt.prot
            and self.mapped == nxt.mapped
        )
