"""Mappable: what a file offers to the memory manager so it can be mmapped.

An application mapping (vma) of a file points at a range of a Mappable. The
Mappable owns the file's pages, which live in the MemoryFile (a tmpfs file's
pages are its data; a host or gofer file's pages are a page cache in front of
it, see FileCache). When the application touches a page the MemoryManager
asks the Mappable to `translate` the file range to MemoryFile ranges, takes a
MemoryFile reference on each, and maps them into the platform address space.
So every mapping of a file and every read and write through the Mappable see
the same pages: shared mappings are coherent with read(2) and write(2) by
construction.

The contract, in both directions:

- `translate(start, end, optional_end, write)` returns Translations covering
  a prefix of the file range [start, end) (and possibly more, up to
  optional_end, which the caller may use to map ahead). A translation that
  stops short of `end` means the rest lies past the end of the file: the
  faulting task gets SIGBUS. `write` means the caller is about to let the
  application write the pages through a MAP_SHARED mapping: a cache marks
  them dirty (and keeps them dirty while writable mappings exist, so a write
  after a writeback is never lost). Private mappings never translate for
  write; they copy the page first. translate may raise SyscallError (EIO from
  the backing file); the fault becomes SIGBUS, copy-in/out fails with EFAULT.
  The returned MemoryFile ranges need only stay valid until translate
  returns: the caller takes its own references before dropping the lock it
  holds.

- `add_mapping` is called when an address range of a MappingSpace starts
  mapping the Mappable (mmap, mremap, fork, stack growth), `remove_mapping`
  when a range stops (munmap, mremap, exit). A removed range may be part of
  an added one or span several adjacent ones (vmas split and merge without
  telling the Mappable); the Mappable tracks the union. A Mappable that
  shrinks (truncate, hole punch) calls `MappingSpace.invalidate` on the
  affected address ranges so the pages are unmapped; the next access
  translates again and gets SIGBUS past the new end of file. invalidate
  must be called without holding any lock that translate takes.

- `punch_hole` and `resident` serve madvise(MADV_REMOVE) and mincore(2).

- `writeback(start, end, sync)` writes dirty pages of the file range to the
  backing store (msync(2) and the munmap of a shared writable mapping call
  it). sync also asks the store to make the data durable (fsync).

Lock order: MemoryManager.mu, then Mappable locks, then MemoryFile locks,
then platform locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Translation:
    """Translation maps the file range [start, end) to the MemoryFile range
    starting at file_offset.

    Attributes:
        start: first file offset (page-aligned).
        end: one past the last file offset (page-aligned).
        file_offset: MemoryFile offset of `start`.
    """

    start: int
    end: int
    file_offset: int


@dataclass(frozen=True, slots=True)
class MappingIdentity:
    """MappingIdentity is how /proc/[pid]/maps names a file mapping.

    Attributes:
        dev: the device number (major << 8 | minor, or new_encode_dev form).
        ino: the inode number.
        path: the path shown, "(deleted)" suffix included where it applies.
    """

    dev: int
    ino: int
    path: str


class MappingSpace(Protocol):
    """MappingSpace is an address space that maps Mappables (a
    MemoryManager)."""

    def invalidate(self, start: int, end: int, even_private: bool) -> None:
        """Unmaps the pages that translate [start, end) of this address
        space, so that the next access translates the file again.

        Args:
            start: first application address (page-aligned).
            end: one past the last application address (page-aligned).
            even_private: also drop private copy-on-write copies, as
                truncate(2) does; a hole punch keeps them.
        """


class Mappable(Protocol):
    """Mappable is a file whose pages can be mapped into address spaces."""

    def translate(
        self, start: int, end: int, optional_end: int, write: bool
    ) -> list[Translation]:
        """Returns the MemoryFile ranges behind the file range [start, end).

        Args:
            start: first file offset (page-aligned).
            end: one past the last required offset (page-aligned, > start).
            optional_end: the caller would also take translations up to here
                (>= end); the Mappable may stop anywhere in [end, optional_end].
            write: the pages are about to be written through a shared mapping.

        Returns:
            Translations in order, contiguous from start; if they end before
            `end` the rest is past the end of the file.

        Raises:
            SyscallError: the backing store failed (EIO...).
        """
        ...

    def add_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        """Records that ms maps [offset, offset + end - start) at [start, end).

        Args:
            ms: the address space.
            start: first application address.
            end: one past the last application address.
            offset: the file offset mapped at start.
            writable: the mapping is MAP_SHARED and may be made writable.
        """
        ...

    def remove_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        """Forgets a mapping that add_mapping recorded (same arguments)."""
        ...

    def writeback(self, start: int, end: int, sync: bool) -> None:
        """Writes the dirty pages of the file range [start, end) back.

        Raises:
            SyscallError: the backing store failed (EIO...).
        """
        ...

    def punch_hole(self, offset: int, length: int) -> None:
        """Makes [offset, offset+length) read as zero and frees its pages
        (madvise(MADV_REMOVE), fallocate(FALLOC_FL_PUNCH_HOLE)); mappings of
        those pages see zeroes.

        Raises:
            SyscallError: EOPNOTSUPP if the file cannot punch holes.
        """
        ...

    def resident(self, offset: int) -> bool:
        """Reports whether the page at file offset is in memory (mincore)."""
        ...


class RefCounted(Protocol):
    """RefCounted is what a vma holds to keep its file alive: an open file
    description, or the object behind a shared anonymous mapping."""

    def inc_ref(self) -> None:
        """Takes a reference."""
        ...

    def dec_ref(self) -> None:
        """Drops a reference."""
        ...
