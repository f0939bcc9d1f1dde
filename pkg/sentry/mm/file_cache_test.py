"""Tests of FileCache: a page cache in the MemoryFile over a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux.mman import PAGE_SIZE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.file_cache import CHUNK, FileCache, HostFdBacking
from pkg.sentry.pgalloc.memory_file import MemoryFile


class FakeFile:
    """FakeFile is a CacheBacking over a bytearray that counts I/O."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.reads = 0
        self.writes = 0
        self.syncs = 0
        self.fail = False

    def pread(self, offset: int, length: int) -> bytes:
        if self.fail:
            raise SyscallError(errno.EIO)
        self.reads += 1
        return bytes(self.data[offset : offset + length])

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        self.writes += 1
        end = offset + len(data)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data
        return len(data)

    def size(self) -> int:
        return len(self.data)

    def fsync(self) -> None:
        self.syncs += 1


class FakeSpace:
    """FakeSpace records invalidations."""

    def __init__(self) -> None:
        self.invalidated: list[tuple[int, int, bool]] = []

    def invalidate(self, start: int, end: int, even_private: bool) -> None:
        self.invalidated.append((start, end, even_private))


@pytest.fixture
def mf() -> Iterator[MemoryFile]:
    f = MemoryFile(size=1 << 32)
    yield f
    f.close()


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def test_translate_fills_pages_from_the_file(mf: MemoryFile) -> None:
    f = FakeFile(pattern(3 * PAGE_SIZE))
    cache = FileCache(mf, f)
    trs = cache.translate(PAGE_SIZE, 2 * PAGE_SIZE, 2 * PAGE_SIZE, False)
    assert trs[0].start == PAGE_SIZE
    assert trs[-1].end >= 2 * PAGE_SIZE
    tr = trs[0]
    assert mf.read(tr.file_offset, 16) == pattern(3 * PAGE_SIZE)[PAGE_SIZE:][:16]
    # The cache and its readers see the same bytes.
    assert cache.read(PAGE_SIZE, 16) == pattern(PAGE_SIZE + 16)[PAGE_SIZE:]


def test_translate_stops_at_end_of_file(mf: MemoryFile) -> None:
    cache = FileCache(mf, FakeFile(b"x" * (PAGE_SIZE + 1)))
    trs = cache.translate(0, 4 * PAGE_SIZE, 4 * PAGE_SIZE, False)
    assert trs[-1].end == 2 * PAGE_SIZE
    assert cache.translate(2 * PAGE_SIZE, 3 * PAGE_SIZE, 3 * PAGE_SIZE, False) == []


def test_writes_through_the_cache_reach_mapped_pages(mf: MemoryFile) -> None:
    f = FakeFile(bytes(2 * PAGE_SIZE))
    cache = FileCache(mf, f)
    (tr,) = cache.translate(0, PAGE_SIZE, PAGE_SIZE, False)
    assert cache.write(10, b"hello") == 5
    assert mf.read(tr.file_offset + 10, 5) == b"hello"
    assert f.data[10:15] == b"hello"


def test_mapped_writes_are_written_back(mf: MemoryFile) -> None:
    f = FakeFile(bytes(2 * PAGE_SIZE))
    cache = FileCache(mf, f)
    space = FakeSpace()
    cache.add_mapping(space, 0x10000, 0x12000, 0, True)
    (tr,) = cache.translate(0, PAGE_SIZE, PAGE_SIZE, True)
    mf.write(tr.file_offset + 5, b"mapped")
    # read() sees the store before any writeback.
    assert cache.read(5, 6) == b"mapped"
    assert f.data[5:11] != b"mapped"
    cache.writeback(0, 2 * PAGE_SIZE, True)
    assert f.data[5:11] == b"mapped"
    assert f.syncs == 1
    # Still writably mapped: the page stays dirty and is written again.
    mf.write(tr.file_offset + 5, b"MAPPED")
    cache.writeback(0, 2 * PAGE_SIZE, False)
    assert f.data[5:11] == b"MAPPED"
    # munmap writes back too, and the page is then clean.
    mf.write(tr.file_offset, b"last")
    cache.remove_mapping(space, 0x10000, 0x12000, 0, True)
    assert f.data[0:4] == b"last"
    writes = f.writes
    cache.writeback(0, 2 * PAGE_SIZE, False)
    assert f.writes == writes


def test_truncate_invalidates_mappings_and_zeroes_the_tail(mf: MemoryFile) -> None:
    f = FakeFile(b"y" * (3 * PAGE_SIZE))
    cache = FileCache(mf, f)
    space = FakeSpace()
    cache.add_mapping(space, 0x100000, 0x103000, 0, True)
    (tr,) = cache.translate(0, 3 * PAGE_SIZE, 3 * PAGE_SIZE, False)
    f.data = f.data[: PAGE_SIZE + 10]
    cache.truncate(PAGE_SIZE + 10)
    assert space.invalidated == [(0x102000, 0x103000, True)]
    assert mf.read(tr.file_offset + PAGE_SIZE + 9, 2) == b"y\0"
    assert cache.translate(2 * PAGE_SIZE, 3 * PAGE_SIZE, 3 * PAGE_SIZE, False) == []


def test_remove_mapping_keeps_the_rest_of_a_mapping(mf: MemoryFile) -> None:
    cache = FileCache(mf, None, size=4 * PAGE_SIZE)
    space = FakeSpace()
    cache.add_mapping(space, 0x10000, 0x14000, 0, True)
    cache.remove_mapping(space, 0x11000, 0x12000, PAGE_SIZE, True)
    assert cache.writable_mappings() == 2
    cache.truncate(0)
    assert sorted(space.invalidated) == [
        (0x10000, 0x11000, True),
        (0x12000, 0x14000, True),
    ]


def test_memory_only_storage(mf: MemoryFile) -> None:
    cache = FileCache(mf, None)
    assert cache.size() == 0
    cache.write(PAGE_SIZE * 3, b"tail")
    assert cache.size() == PAGE_SIZE * 3 + 4
    assert cache.read(0, 4) == bytes(4)
    assert cache.read(PAGE_SIZE * 3, 100) == b"tail"
    cache.punch_hole(PAGE_SIZE * 3, 2)
    assert cache.read(PAGE_SIZE * 3, 4) == b"\0\0il"
    # Freed with the last reference.
    assert mf.allocated == CHUNK
    cache.dec_ref()
    assert mf.allocated == 0


def test_backing_errors_propagate(mf: MemoryFile) -> None:
    f = FakeFile(b"z" * PAGE_SIZE)
    f.fail = True
    cache = FileCache(mf, f)
    with pytest.raises(SyscallError) as e:
        cache.translate(0, PAGE_SIZE, PAGE_SIZE, False)
    assert e.value.errno == errno.EIO
    assert mf.allocated == 0


def test_host_fd_backing(mf: MemoryFile) -> None:
    with tempfile.TemporaryFile() as tmp:
        tmp.write(b"host file contents")
        tmp.flush()
        fd = tmp.fileno()
        cache = FileCache(mf, HostFdBacking(fd))
        space = FakeSpace()
        cache.add_mapping(space, 0x10000, 0x11000, 0, True)
        (tr,) = cache.translate(0, PAGE_SIZE, PAGE_SIZE, True)
        assert mf.read(tr.file_offset, 4) == b"host"
        mf.write(tr.file_offset, b"HOST")
        cache.remove_mapping(space, 0x10000, 0x11000, 0, True)
        assert os.pread(fd, 18, 0) == b"HOST file contents"
        cache.dec_ref()
    assert mf.allocated == 0
