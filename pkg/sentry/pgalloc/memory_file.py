"""MemoryFile: the one memfd that backs all application memory.

Every anonymous page, every private copy and every tmpfs page of every address
space in the sandbox is a page of this file. Platforms map ranges of it into
application address spaces; the sentry maps all of it into its own address
space once, so copy-in and copy-out are plain slices of a memoryview.

The file is created sparse and very large (DEFAULT_SIZE). The host allocates
a page only when someone touches it, so a range handed out by `allocate` costs
nothing until the application writes to it, and `decommit` returns pages to
the host by punching a hole. Offsets are therefore a cheap, plentiful resource,
and allocation can hand out contiguous ranges as large as a whole mapping.
"""

from __future__ import annotations

import bisect
import logging
import mmap
import os
import threading

from pkg.abi.linux.mman import PAGE_SIZE

log = logging.getLogger(__name__)

# 1 TiB of offsets. Only touched pages use memory.
DEFAULT_SIZE = 1 << 40


class MemoryFile:
    """MemoryFile allocates page-aligned ranges of a sparse memfd.

    Allocation is first-fit over a sorted free list, with the untouched tail
    of the file used when no freed range fits.
    """

    def __init__(self, size: int = DEFAULT_SIZE, name: str = "runsc-memory") -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self.size = size
        os.ftruncate(self.fd, size)
        self._mapping = mmap.mmap(self.fd, size)
        # view is the sentry's own mapping of the whole file.
        self.view = memoryview(self._mapping)
        self._mu = threading.Lock()
        # Free ranges below _tail, as parallel sorted lists of starts and ends.
        self._free_starts: list[int] = []
        self._free_ends: list[int] = []
        # Everything at or above _tail has never been allocated.
        self._tail = 0
        self._allocated = 0

    def allocate(self, length: int) -> int:
        """Returns the offset of a fresh zero-filled range of length bytes.

        Raises:
            MemoryError: the file's offsets are exhausted.
        """
        assert length > 0 and length % PAGE_SIZE == 0, length
        with self._mu:
            for i, start in enumerate(self._free_starts):
                end = self._free_ends[i]
                if end - start >= length:
                    if end - start == length:
                        del self._free_starts[i]
                        del self._free_ends[i]
                    else:
                        self._free_starts[i] = start + length
                    self._allocated += length
                    return start
            if self._tail + length > self.size:
                raise MemoryError("memory file exhausted")
            start = self._tail
            self._tail += length
            self._allocated += length
            return start

    def free(self, offset: int, length: int) -> None:
        """Returns [offset, offset+length) to the allocator and to the host."""
        assert offset % PAGE_SIZE == 0 and length % PAGE_SIZE == 0
        self.decommit(offset, length)
        end = offset + length
        with self._mu:
            self._allocated -= length
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

    def decommit(self, offset: int, length: int) -> None:
        """Releases the pages of a range to the host; they read as zeroes."""
        self._mapping.madvise(mmap.MADV_REMOVE, offset, length)

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

    @property
    def allocated(self) -> int:
        """The number of bytes currently allocated."""
        return self._allocated

    def close(self) -> None:
        """Unmaps and closes the file."""
        self.view.release()
        self._mapping.close()
        os.close(self.fd)
