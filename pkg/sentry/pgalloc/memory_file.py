"""MemoryFile: the one memfd that backs all application memory.

Every anonymous page, every private copy and every cached file page of every
address space in the sandbox is a page of this file. Platforms map ranges of
it into application address spaces; the sentry maps all of it into its own
address space once, so copy-in and copy-out are plain slices of a memoryview.

The file is created sparse and very large (DEFAULT_SIZE). The host allocates
a page only when someone touches it, so a range handed out by `allocate`
costs nothing until the application writes to it, and releasing a range
punches a hole that returns its pages to the host. Offsets are therefore a
cheap, plentiful resource, and allocation can hand out contiguous ranges as
large as a whole mapping.

Pages are reference counted per range. `allocate` returns a range with one
reference; every owner that shares it (a copy-on-write address space after
fork, a file's page cache and the mappings of it) takes another with
`inc_ref`, and the pages return to the allocator when `dec_ref` drops the
last one. Copy-on-write asks `refs` whether a page is still shared before it
copies it.

Which pages the host has actually populated (committed) is the file's own
business; `resident` and `data_ranges` read it back with mincore(2) on the
sentry's mapping, which is how the application's mincore(2), smaps and
copy-on-write (which copies only populated pages) see resident memory.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import mmap
import os
import threading

from pkg.abi.linux.mman import PAGE_SIZE

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
_mincore = _libc.mincore
_mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
_mincore.restype = ctypes.c_int

# 1 TiB of offsets. Only touched pages use memory.
DEFAULT_SIZE = 1 << 40


class MemoryFile:
    """MemoryFile allocates reference-counted page ranges of a sparse memfd.

    Allocation is first-fit over a sorted free list, with the untouched tail
    of the file used when no freed range fits. All methods are thread-safe;
    the internal lock is a leaf (nothing else is taken while it is held).

    Attributes:
        fd: the memfd; platforms map it by this number.
        view: the sentry's own mapping of the whole file.
    """

    def __init__(self, size: int = DEFAULT_SIZE, name: str = "runsc-memory") -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self.size = size
        os.ftruncate(self.fd, size)
        self._mapping = mmap.mmap(self.fd, size)
        self.view = memoryview(self._mapping)
        # The address of the mapping, for mincore; the ctypes object that
        # exports it is dropped at once so that close() can unmap.
        anchor = ctypes.c_char.from_buffer(self._mapping)
        self._base = ctypes.addressof(anchor)
        del anchor
        self._mu = threading.Lock()
        # Free ranges below _tail, as parallel sorted lists of starts and ends.
        self._free_starts: list[int] = []
        self._free_ends: list[int] = []
        # Everything at or above _tail has never been allocated.
        self._tail = 0
        self._allocated = 0
        # Allocated ranges and their reference counts, as parallel lists
        # sorted by start; the ranges never overlap.
        self._ref_starts: list[int] = []
        self._ref_ends: list[int] = []
        self._ref_counts: list[int] = []

    # Allocation and reference counting.

    def allocate(self, length: int) -> int:
        """Returns the offset of a fresh zero-filled range of length bytes,
        holding one reference.

        Raises:
            MemoryError: the file's offsets are exhausted.
        """
        assert length > 0 and length % PAGE_SIZE == 0, length
        with self._mu:
            start = self._take_free_locked(length)
            self._allocated += length
            i = bisect.bisect_left(self._ref_starts, start)
            self._ref_starts.insert(i, start)
            self._ref_ends.insert(i, start + length)
            self._ref_counts.insert(i, 1)
            self._merge_locked(i)
            return start

    def _take_free_locked(self, length: int) -> int:
        starts, ends = self._free_starts, self._free_ends
        for i in range(len(starts)):
            start = starts[i]
            end = ends[i]
            if end - start >= length:
                if end - start == length:
                    del starts[i]
                    del ends[i]
                else:
                    starts[i] = start + length
                return start
        if self._tail + length > self.size:
            raise MemoryError("memory file exhausted")
        start = self._tail
        self._tail += length
        return start

    def inc_ref(self, offset: int, length: int) -> None:
        """Takes another reference on every page of an allocated range."""
        with self._mu:
            lo, hi = self._isolate_locked(offset, offset + length)
            for i in range(lo, hi):
                self._ref_counts[i] += 1
            self._merge_around_locked(lo, hi)

    def dec_ref(self, offset: int, length: int) -> None:
        """Drops a reference on every page of an allocated range; pages whose
        last reference goes return to the allocator and to the host."""
        freed = []
        with self._mu:
            lo, hi = self._isolate_locked(offset, offset + length)
            counts = self._ref_counts
            for i in range(hi - 1, lo - 1, -1):
                counts[i] -= 1
                if counts[i] == 0:
                    freed.append((self._ref_starts[i], self._ref_ends[i]))
                    del self._ref_starts[i]
                    del self._ref_ends[i]
                    del counts[i]
                    hi -= 1
            if hi > lo:
                self._merge_around_locked(lo, hi)
            elif lo < len(counts):
                self._merge_locked(lo)
        for start, end in freed:
            # Punching the hole first means a reallocated range reads zero.
            self.decommit(start, end - start)
        with self._mu:
            for start, end in freed:
                self._allocated -= end - start
                self._add_free_locked(start, end)

    def free(self, offset: int, length: int) -> None:
        """Drops the reference `allocate` returned (same as dec_ref)."""
        self.dec_ref(offset, length)

    def refs(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """Returns [(start, end, refcount), ...] covering an allocated range,
        in order, clipped to it."""
        out = []
        end = offset + length
        with self._mu:
            i = bisect.bisect_right(self._ref_starts, offset) - 1
            i = max(i, 0)
            starts, ends, counts = self._ref_starts, self._ref_ends, self._ref_counts
            while i < len(starts) and starts[i] < end:
                if ends[i] > offset:
                    out.append((max(starts[i], offset), min(ends[i], end), counts[i]))
                i += 1
        return out

    def is_exclusive(self, offset: int, length: int) -> bool:
        """Reports whether every page of the range has exactly one reference."""
        return all(c == 1 for _, _, c in self.refs(offset, length))

    def _isolate_locked(self, start: int, end: int) -> tuple[int, int]:
        # Splits reference ranges at start and end; returns the index range
        # of those inside, which must cover [start, end) exactly.
        for addr in (start, end):
            i = bisect.bisect_right(self._ref_starts, addr) - 1
            if i >= 0 and self._ref_starts[i] < addr < self._ref_ends[i]:
                self._ref_starts.insert(i + 1, addr)
                self._ref_ends.insert(i + 1, self._ref_ends[i])
                self._ref_counts.insert(i + 1, self._ref_counts[i])
                self._ref_ends[i] = addr
        lo = bisect.bisect_left(self._ref_starts, start)
        hi = bisect.bisect_left(self._ref_starts, end)
        cur = start
        for i in range(lo, hi):
            if self._ref_starts[i] != cur:
                raise AssertionError(f"memory file: {cur:#x} is not allocated")
            cur = self._ref_ends[i]
        if cur != end:
            raise AssertionError(f"memory file: {cur:#x} is not allocated")
        return lo, hi

    def _merge_around_locked(self, lo: int, hi: int) -> None:
        # Merges neighbours with equal counts inside and at the edges of
        # [lo, hi), from the top so indices below stay valid.
        for i in range(min(hi, len(self._ref_starts) - 1), max(lo, 1) - 1, -1):
            self._merge_locked(i)

    def _merge_locked(self, i: int) -> None:
        # Merges range i with i-1 and i+1 where adjacent with equal counts.
        starts, ends, counts = self._ref_starts, self._ref_ends, self._ref_counts
        if (
            i + 1 < len(starts)
            and ends[i] == starts[i + 1]
            and (counts[i] == counts[i + 1])
        ):
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1], counts[i + 1]
        if (
            0 < i < len(starts)
            and ends[i - 1] == starts[i]
            and (counts[i - 1] == counts[i])
        ):
            ends[i - 1] = ends[i]
            del starts[i], ends[i], counts[i]

    def _add_free_locked(self, offset: int, end: int) -> None:
        i = bisect.bisect_left(self._free_starts, offset)
        # Merge with the neighbours on either side.
        if i > 0 and self._free_ends[i - 1] == offset:
            i -= 1
            offset = self._free_starts[i]
            del self._free_starts[i]
            del self._free_ends[i]
        if i < len(self._free_starts) and self._free_starts[i] == end:
            end = self._free_ends[i]
            del self._free_starts[i]
            del self._free_ends[i]
        if end == self._tail:
            self._tail = offset
        else:
            self._free_starts.insert(i, offset)
            self._free_ends.insert(i, end)

    # Contents.

    def decommit(self, offset: int, length: int) -> None:
        """Releases the pages of a range to the host; they read as zeroes."""
        self._mapping.madvise(mmap.MADV_REMOVE, offset, length)

    def resident(self, offset: int, length: int) -> bytes:
        """Returns one byte per page of a page-aligned range: 1 where the
        host has populated the page, else 0 (mincore(2) of the sentry's
        mapping, which reports the file's pages whoever touched them)."""
        pages = (length + PAGE_SIZE - 1) // PAGE_SIZE
        vec = ctypes.create_string_buffer(pages)
        if _mincore(ctypes.c_void_p(self._base + offset), length, vec) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return bytes(b & 1 for b in vec.raw)

    def data_ranges(self, offset: int, length: int) -> list[tuple[int, int]]:
        """Returns the committed (host-populated) parts of a page-aligned
        range, as [(start, end), ...] in order."""
        out: list[tuple[int, int]] = []
        vec = self.resident(offset, length)
        i = vec.find(1)
        while i >= 0:
            j = vec.find(0, i)
            if j < 0:
                j = len(vec)
            out.append((offset + i * PAGE_SIZE, offset + j * PAGE_SIZE))
            i = vec.find(1, j)
        return out

    def committed_in(self, offset: int, length: int) -> int:
        """Returns how many bytes of a range the host has populated."""
        return sum(e - s for s, e in self.data_ranges(offset, length))

    def read(self, offset: int, length: int) -> bytes:
        """Returns a copy of length bytes at offset."""
        return bytes(self.view[offset : offset + length])

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Copies data into the file at offset."""
        self.view[offset : offset + len(data)] = data

    def zero(self, offset: int, length: int) -> None:
        """Zeroes a range; whole pages are decommitted rather than written."""
        start = (offset + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        end = (offset + length) & ~(PAGE_SIZE - 1)
        if end <= start:
            self.view[offset : offset + length] = bytes(length)
            return
        self.view[offset:start] = bytes(start - offset)
        self.decommit(start, end - start)
        self.view[end : offset + length] = bytes(offset + length - end)

    def copy(self, dst: int, src: int, length: int) -> None:
        """Copies length bytes from offset src to offset dst."""
        self.view[dst : dst + length] = self.view[src : src + length]

    def copy_data(self, dst: int, src: int, length: int) -> None:
        """Copies the committed parts of [src, src+length) to a zero-filled
        range at dst, leaving the rest of dst uncommitted."""
        view = self.view
        for start, end in self.data_ranges(src, length):
            d = dst + (start - src)
            view[d : d + (end - start)] = view[start:end]

    @property
    def allocated(self) -> int:
        """The number of bytes currently allocated."""
        return self._allocated

    @property
    def committed(self) -> int:
        """The number of bytes the host has populated in the whole file."""
        return os.fstat(self.fd).st_blocks * 512

    def close(self) -> None:
        """Unmaps and closes the file."""
        self.view.release()
        self._mapping.close()
        os.close(self.fd)
