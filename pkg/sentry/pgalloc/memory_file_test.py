"""Tests of the MemoryFile allocator and its host-backed storage."""

import os

from pkg.abi.linux.mman import PAGE_SIZE
from pkg.sentry.pgalloc.memory_file import MemoryFile


def _rss_pages(mf: MemoryFile) -> int:
    # Pages of the memfd resident in the host, from its block count.
    return os.fstat(mf.fd).st_blocks * 512 // PAGE_SIZE


def test_allocations_do_not_overlap_and_reuse_freed_ranges() -> None:
    mf = MemoryFile(size=1 << 30)
    a = mf.allocate(4 * PAGE_SIZE)
    b = mf.allocate(PAGE_SIZE)
    assert b >= a + 4 * PAGE_SIZE or b + PAGE_SIZE <= a
    mf.free(a, 4 * PAGE_SIZE)
    c = mf.allocate(2 * PAGE_SIZE)
    assert c == a
    assert mf.allocated == 3 * PAGE_SIZE
    mf.close()


def test_freed_neighbours_merge() -> None:
    mf = MemoryFile(size=1 << 30)
    a = mf.allocate(PAGE_SIZE)
    b = mf.allocate(PAGE_SIZE)
    c = mf.allocate(PAGE_SIZE)
    mf.allocate(PAGE_SIZE)
    mf.free(a, PAGE_SIZE)
    mf.free(c, PAGE_SIZE)
    mf.free(b, PAGE_SIZE)
    assert mf.allocate(3 * PAGE_SIZE) == a
    mf.close()


def test_untouched_memory_costs_nothing_and_free_returns_it() -> None:
    mf = MemoryFile(size=1 << 34)
    big = mf.allocate(1 << 30)
    assert _rss_pages(mf) == 0
    mf.write(big + 5 * PAGE_SIZE, b"x" * PAGE_SIZE)
    assert _rss_pages(mf) == 1
    mf.free(big, 1 << 30)
    assert _rss_pages(mf) == 0
    mf.close()


def test_zero_clears_partial_and_whole_pages() -> None:
    mf = MemoryFile(size=1 << 30)
    off = mf.allocate(3 * PAGE_SIZE)
    mf.write(off, b"\xff" * 3 * PAGE_SIZE)
    mf.zero(off + 100, 2 * PAGE_SIZE)
    data = mf.read(off, 3 * PAGE_SIZE)
    assert data[:100] == b"\xff" * 100
    assert data[100 : 100 + 2 * PAGE_SIZE] == bytes(2 * PAGE_SIZE)
    assert data[100 + 2 * PAGE_SIZE :] == b"\xff" * (PAGE_SIZE - 100)
    mf.close()


def test_refcounts_split_and_free_at_zero() -> None:
    mf = MemoryFile(size=1 << 30)
    a = mf.allocate(4 * PAGE_SIZE)
    mf.inc_ref(a + PAGE_SIZE, 2 * PAGE_SIZE)
    assert mf.refs(a, 4 * PAGE_SIZE) == [
        (a, a + PAGE_SIZE, 1),
        (a + PAGE_SIZE, a + 3 * PAGE_SIZE, 2),
        (a + 3 * PAGE_SIZE, a + 4 * PAGE_SIZE, 1),
    ]
    assert not mf.is_exclusive(a, 2 * PAGE_SIZE)
    mf.dec_ref(a, 4 * PAGE_SIZE)
    assert mf.allocated == 2 * PAGE_SIZE
    assert mf.refs(a + PAGE_SIZE, 2 * PAGE_SIZE) == [
        (a + PAGE_SIZE, a + 3 * PAGE_SIZE, 1)
    ]
    mf.dec_ref(a + PAGE_SIZE, 2 * PAGE_SIZE)
    assert mf.allocated == 0
    mf.close()


def test_freed_pages_read_zero_when_reallocated() -> None:
    mf = MemoryFile(size=1 << 30)
    a = mf.allocate(PAGE_SIZE)
    mf.write(a, b"dirty")
    mf.dec_ref(a, PAGE_SIZE)
    b = mf.allocate(PAGE_SIZE)
    assert b == a
    assert mf.read(b, 5) == bytes(5)
    mf.close()


def test_copy_data_copies_only_committed_pages() -> None:
    mf = MemoryFile(size=1 << 30)
    src = mf.allocate(64 * PAGE_SIZE)
    mf.write(src + 10 * PAGE_SIZE, b"ten")
    dst = mf.allocate(64 * PAGE_SIZE)
    mf.copy_data(dst, src, 64 * PAGE_SIZE)
    assert mf.read(dst + 10 * PAGE_SIZE, 3) == b"ten"
    assert mf.committed_in(dst, 64 * PAGE_SIZE) == PAGE_SIZE
    assert mf.data_ranges(src, 64 * PAGE_SIZE) == [
        (src + 10 * PAGE_SIZE, src + 11 * PAGE_SIZE)
    ]
    mf.close()
