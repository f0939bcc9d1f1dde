"""The two layers of a MemoryManager: vmas and pmas.

A Vma is what the application sees: a range of its address space with
permissions and a backing (anonymous memory, or a range of a mappable file).
A Pma ("platform mapping area") is what backs part of a vma right now: a range
of the MemoryFile, mapped into the platform address space with some
protection. Anonymous vmas get their pmas when they are created, since
MemoryFile pages cost nothing until touched; file-backed and copy-on-write
ranges get theirs as faults arrive.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
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
    # The file this range maps, or None for anonymous memory.
    mappable: object | None = None
    # Offset into mappable of `start`.
    offset: int = 0
    # What /proc/self/maps calls it: "[heap]", "[stack]", or a path.
    name: str = ""
    dontfork: bool = False
    locked: bool = False

    def split(self, addr: int) -> Vma:
        """Shortens this vma to end at addr and returns the rest."""
        tail = Vma(
            start=addr,
            end=self.end,
            prot=self.prot,
            max_prot=self.max_prot,
            private=self.private,
            growsdown=self.growsdown,
            mappable=self.mappable,
            offset=self.offset + (addr - self.start),
            name=self.name,
            dontfork=self.dontfork,
            locked=self.locked,
        )
        self.end = addr
        return tail


@dataclass(slots=True)
class Pma:
    """Pma maps [start, end) of the address space to MemoryFile pages."""

    start: int
    end: int
    # Offset in the MemoryFile of `start`.
    file_offset: int
    # The protection it is mapped with in the platform address space.
    prot: int
    # The pages are shared with another owner and must be copied before they
    # are written (copy-on-write after fork).
    cow: bool = False

    def split(self, addr: int) -> Pma:
        """Shortens this pma to end at addr and returns the rest."""
        tail = Pma(
            start=addr,
            end=self.end,
            file_offset=self.file_offset + (addr - self.start),
            prot=self.prot,
            cow=self.cow,
        )
        self.end = addr
        return tail
