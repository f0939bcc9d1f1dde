"""FileCache: a page cache in the MemoryFile, and a Mappable over it.

A FileCache sits in front of one file (its backing) and keeps pages of it in
the MemoryFile, so that the file can be mmapped: mappings and the cache's
own read and write share those pages, which makes MAP_SHARED mappings
coherent with read(2) and write(2) as long as all I/O on the file goes
through the cache. Pages written through shared mappings are dirty until
`writeback` copies them to the backing; a page that is mapped writable stays
dirty after a writeback (the application may write it again at any time
without the cache noticing), as Linux keeps such pages under write-back
tracking.

Without a backing, the cache *is* the file: its pages are the only copy of
the data and nothing is ever written back. That is how shared anonymous
memory (MAP_SHARED|MAP_ANONYMOUS, "/dev/zero (deleted)") and memfd files
are stored, as shmem does in Linux.

Pages are cached in chunks of CHUNK bytes (one MemoryFile allocation each,
filled from the backing in one read) and stay cached until the file shrinks
or the cache is released.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Protocol

from pkg.abi.linux import errno
from pkg.abi.linux.mman import PAGE_SIZE, page_round_down, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.mappable import MappingSpace, Translation

if TYPE_CHECKING:
    from pkg.sentry.pgalloc.memory_file import MemoryFile

log = logging.getLogger(__name__)

# Bytes cached per MemoryFile allocation; a power of two multiple of pages.
CHUNK = 16 * PAGE_SIZE
_CHUNK_SHIFT = CHUNK.bit_length() - 1
_PAGE_SHIFT = PAGE_SIZE.bit_length() - 1


class CacheBacking(Protocol):
    """CacheBacking is the file a FileCache caches.

    Methods raise SyscallError for guest-visible failures (EIO, ENOSPC...).
    """

    def pread(self, offset: int, length: int) -> bytes:
        """Returns up to length bytes at offset (fewer only at end of file)."""
        ...

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Writes data at offset; returns the bytes written."""
        ...

    def size(self) -> int:
        """Returns the current file size."""
        ...

    def fsync(self) -> None:
        """Makes written data durable."""
        ...


class HostFdBacking:
    """HostFdBacking is a CacheBacking over a host file descriptor (which it
    does not own)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from e

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        try:
            return os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from e

    def size(self) -> int:
        try:
            return os.fstat(self.fd).st_size
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from e

    def fsync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from e


class _Mapping:
    __slots__ = ("end", "ms", "offset", "start", "writable")

    def __init__(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        self.ms = ms
        self.start = start
        self.end = end
        self.offset = offset
        self.writable = writable


class FileCache:
    """FileCache caches a file's pages in the MemoryFile and maps them.

    It implements Mappable. It is reference counted: whoever creates it
    holds one reference, every vma mapping it (through its file) holds the
    file, and `dec_ref` of the last reference writes back and frees the
    pages.

    Args:
        mf: the MemoryFile.
        backing: the cached file, or None for memory-only storage.
        size: the initial size of memory-only storage.
    """

    __slots__ = (
        "_backing",
        "_chunks",
        "_dirty",
        "_mappings",
        "_mu",
        "_refs",
        "_size",
        "mf",
    )

    def __init__(
        self, mf: MemoryFile, backing: CacheBacking | None = None, size: int = 0
    ) -> None:
        self.mf = mf
        self._backing = backing
        self._mu = threading.Lock()
        # Chunk index -> MemoryFile offset of the chunk's first byte.
        self._chunks: dict[int, int] = {}
        # Indices of pages written through shared mappings.
        self._dirty: set[int] = set()
        self._mappings: list[_Mapping] = []
        self._size = size
        self._refs = 1

    # Reference counting.

    def inc_ref(self) -> None:
        """Takes a reference."""
        with self._mu:
            self._refs += 1

    def dec_ref(self) -> None:
        """Drops a reference; the last writes back and frees every page."""
        with self._mu:
            self._refs -= 1
            if self._refs:
                return
        try:
            self.writeback(0, 1 << 63, False)
        except SyscallError as e:
            log.warning("mm: writeback on release of a file cache failed: %s", e)
        with self._mu:
            chunks = list(self._chunks.values())
            self._chunks.clear()
            self._dirty.clear()
        for off in chunks:
            self.mf.dec_ref(off, CHUNK)

    # The file.

    def size(self) -> int:
        """Returns the file size."""
        if self._backing is None:
            return self._size
        return self._backing.size()

    def read(self, offset: int, length: int) -> bytes:
        """Reads up to length bytes at offset, from cached pages where there
        are any and from the backing elsewhere."""
        with self._mu:
            size = self.size()
            end = min(offset + length, size)
            if end <= offset:
                return b""
            out = []
            pos = offset
            while pos < end:
                idx = pos >> _CHUNK_SHIFT
                stop = min(end, (idx + 1) << _CHUNK_SHIFT)
                moff = self._chunks.get(idx)
                if moff is not None:
                    base = moff + (pos - (idx << _CHUNK_SHIFT))
                    out.append(self.mf.read(base, stop - pos))
                elif self._backing is not None:
                    data = self._backing.pread(pos, stop - pos)
                    out.append(data)
                    if len(data) < stop - pos:
                        break
                else:
                    out.append(bytes(stop - pos))
                pos = stop
            return b"".join(out)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Writes data at offset, through to the backing; returns the bytes
        written. Memory-only storage grows to hold them."""
        length = len(data)
        if length == 0:
            return 0
        with self._mu:
            if self._backing is not None:
                n = self._backing.pwrite(offset, data)
            else:
                n = length
            view = memoryview(data)[:n]
            pos = offset
            end = offset + n
            while pos < end:
                idx = pos >> _CHUNK_SHIFT
                stop = min(end, (idx + 1) << _CHUNK_SHIFT)
                moff = self._chunks.get(idx)
                if moff is None and self._backing is None:
                    moff = self._new_chunk_locked(idx)
                if moff is not None:
                    base = moff + (pos - (idx << _CHUNK_SHIFT))
                    self.mf.write(base, view[pos - offset : stop - offset])
                pos = stop
            if self._backing is None and end > self._size:
                self._size = end
            return n

    def truncate(self, size: int) -> None:
        """Records that the file is now size bytes long (the owner has
        already truncated the backing). Pages past the new end are unmapped
        from every address space, and bytes past it read as zero."""
        with self._mu:
            old = self._size if self._backing is None else None
            self._size = size
        if old is not None and size >= old:
            return
        # Unmap pages past the new end, then forget them.
        first_page = page_round_up(size)
        self._invalidate(first_page, 1 << 63, even_private=True)
        with self._mu:
            freed = []
            for idx in list(self._chunks):
                cstart = idx << _CHUNK_SHIFT
                moff = self._chunks[idx]
                if cstart >= first_page:
                    freed.append(moff)
                    del self._chunks[idx]
                elif cstart + CHUNK > size:
                    # The partial chunk: zero from size to its end.
                    self.mf.zero(moff + (size - cstart), cstart + CHUNK - size)
            first_dirty = first_page >> _PAGE_SHIFT
            self._dirty = {p for p in self._dirty if p < first_dirty}
        for moff in freed:
            self.mf.dec_ref(moff, CHUNK)

    def punch_hole(self, offset: int, length: int) -> None:
        """Makes [offset, offset+length) read as zero, releasing whole pages
        (fallocate(FALLOC_FL_PUNCH_HOLE), madvise(MADV_REMOVE)). Mapped pages
        change in place, so mappings need no invalidation."""
        end = offset + length
        with self._mu:
            pos = offset
            while pos < end:
                idx = pos >> _CHUNK_SHIFT
                stop = min(end, (idx + 1) << _CHUNK_SHIFT)
                moff = self._chunks.get(idx)
                if moff is not None:
                    self.mf.zero(moff + (pos - (idx << _CHUNK_SHIFT)), stop - pos)
                pos = stop

    @property
    def memory_only(self) -> bool:
        """Reports whether the cache is the file itself (no backing)."""
        return self._backing is None

    @property
    def cached_bytes(self) -> int:
        """How many bytes of MemoryFile the cache holds (committed or not)."""
        return len(self._chunks) * CHUNK

    # Mappable.

    def translate(
        self, start: int, end: int, optional_end: int, write: bool
    ) -> list[Translation]:
        with self._mu:
            eof = page_round_up(self.size())
            # Map ahead to the end of the last required chunk, not further.
            limit = min(max(end, min(optional_end, ((end - 1) | (CHUNK - 1)) + 1)), eof)
            out: list[Translation] = []
            pos = start
            while pos < limit:
                idx = pos >> _CHUNK_SHIFT
                stop = min(limit, (idx + 1) << _CHUNK_SHIFT)
                moff = self._chunks.get(idx)
                if moff is None:
                    moff = self._fill_chunk_locked(idx)
                foff = moff + (pos - (idx << _CHUNK_SHIFT))
                last = out[-1] if out else None
                if last is not None and last.file_offset + (last.end - last.start) == (
                    foff
                ):
                    out[-1] = Translation(last.start, stop, last.file_offset)
                else:
                    out.append(Translation(pos, stop, foff))
                pos = stop
            if write and self._backing is not None and limit > start:
                self._dirty.update(range(start >> _PAGE_SHIFT, limit >> _PAGE_SHIFT))
            return out

    def add_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        with self._mu:
            self._mappings.append(_Mapping(ms, start, end, offset, writable))

    def remove_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        with self._mu:
            kept = []
            for m in self._mappings:
                if m.ms is not ms or m.end <= start or m.start >= end:
                    kept.append(m)
                    continue
                # Keep the parts of the recorded mapping outside the range.
                if m.start < start:
                    kept.append(_Mapping(ms, m.start, start, m.offset, m.writable))
                if m.end > end:
                    kept.append(
                        _Mapping(ms, end, m.end, m.offset + (end - m.start), m.writable)
                    )
            self._mappings = kept
        if writable and self._backing is not None:
            # munmap of a shared mapping writes its pages back, as msync would.
            try:
                self.writeback(offset, offset + (end - start), False)
            except SyscallError as e:
                log.warning("mm: writeback on munmap failed: %s", e)

    def writable_mappings(self) -> int:
        """Returns how many writable shared mappings of the file exist."""
        with self._mu:
            return sum(1 for m in self._mappings if m.writable)

    def resident(self, offset: int) -> bool:
        """Reports whether the page at offset is cached and populated."""
        idx = offset >> _CHUNK_SHIFT
        with self._mu:
            moff = self._chunks.get(idx)
        if moff is None:
            return False
        page = moff + (page_round_down(offset) - (idx << _CHUNK_SHIFT))
        return self.mf.committed_in(page, PAGE_SIZE) > 0

    def writeback(self, start: int, end: int, sync: bool) -> None:
        backing = self._backing
        if backing is None:
            return
        with self._mu:
            first = start >> _PAGE_SHIFT
            last = (end + PAGE_SIZE - 1) >> _PAGE_SHIFT
            if len(self._dirty) < last - first:
                pages = sorted(p for p in self._dirty if first <= p < last)
            else:
                pages = [p for p in range(first, last) if p in self._dirty]
            size = backing.size()
            keep = self._writably_mapped_locked()
            # Write runs of consecutive dirty pages.
            i = 0
            while i < len(pages):
                j = i
                while j + 1 < len(pages) and pages[j + 1] == pages[j] + 1:
                    j += 1
                self._write_pages_locked(pages[i], pages[j] + 1, size)
                i = j + 1
            for p in pages:
                if not _covered(keep, p << _PAGE_SHIFT):
                    self._dirty.discard(p)
        if sync:
            backing.fsync()

    # Internals.

    def _new_chunk_locked(self, idx: int) -> int:
        try:
            moff = self.mf.allocate(CHUNK)
        except MemoryError as e:
            raise SyscallError(errno.ENOMEM) from e
        self._chunks[idx] = moff
        return moff

    def _fill_chunk_locked(self, idx: int) -> int:
        moff = self._new_chunk_locked(idx)
        if self._backing is not None:
            try:
                data = self._backing.pread(idx << _CHUNK_SHIFT, CHUNK)
            except SyscallError:
                del self._chunks[idx]
                self.mf.dec_ref(moff, CHUNK)
                raise
            if data:
                self.mf.write(moff, data)
        return moff

    def _write_pages_locked(self, first: int, last: int, size: int) -> None:
        backing = self._backing
        assert backing is not None
        pos = first << _PAGE_SHIFT
        end = min(last << _PAGE_SHIFT, size)
        while pos < end:
            idx = pos >> _CHUNK_SHIFT
            stop = min(end, (idx + 1) << _CHUNK_SHIFT)
            moff = self._chunks.get(idx)
            if moff is not None:
                base = moff + (pos - (idx << _CHUNK_SHIFT))
                backing.pwrite(pos, self.mf.view[base : base + (stop - pos)])
            pos = stop

    def _writably_mapped_locked(self) -> list[tuple[int, int]]:
        return [
            (m.offset, m.offset + (m.end - m.start))
            for m in self._mappings
            if m.writable
        ]

    def _invalidate(self, start: int, end: int, even_private: bool) -> None:
        # Called without _mu: invalidate takes the MemoryManager lock, which
        # orders before ours.
        with self._mu:
            targets = []
            for m in self._mappings:
                mend = m.offset + (m.end - m.start)
                lo = max(start, m.offset)
                hi = min(end, mend)
                if lo < hi:
                    targets.append(
                        (m.ms, m.start + (lo - m.offset), m.start + (hi - m.offset))
                    )
        for ms, lo, hi in targets:
            ms.invalidate(lo, hi, even_private)


def _covered(ranges: list[tuple[int, int]], offset: int) -> bool:
    return any(s <= offset < e for s, e in ranges)
