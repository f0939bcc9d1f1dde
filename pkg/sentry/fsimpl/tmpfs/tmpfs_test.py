"""Tests of tmpfs internals: file pages, holes, sizes, directory offsets."""

from __future__ import annotations

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.inode import Directory, TmpfsDentry
from pkg.sentry.fsimpl.tmpfs.regular_file import PAGE_SIZE, RegularFile
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsFilesystem, TmpfsType
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.vfs import VirtualFilesystem


@pytest.fixture
def fs() -> TmpfsFilesystem:
    mf = MemoryFile(size=1 << 28)
    vfs = VirtualFilesystem()
    return TmpfsFilesystem(vfs, TmpfsType(mf), mf, 64 * PAGE_SIZE, 0, 0o1777, 0, 0)


def test_write_read_holes(fs: TmpfsFilesystem) -> None:
    f = RegularFile(fs, 0o644, 0, 0)
    assert f.write_at(None, 10, b"abc", append=False) == (3, 13)
    assert f.read_at(0, 100) == bytes(10) + b"abc"
    f.write_at(None, 5 * PAGE_SIZE, b"z", append=False)
    assert f.size == 5 * PAGE_SIZE + 1
    # Only the two touched pages exist.
    assert sorted(f.pages) == [0, 5]
    assert f.read_at(3 * PAGE_SIZE, 4) == bytes(4)
    assert f.write_at(None, 0, b"!", append=True) == (1, 5 * PAGE_SIZE + 2)


def test_reads_across_page_boundaries(fs: TmpfsFilesystem) -> None:
    f = RegularFile(fs, 0o644, 0, 0)
    data = bytes(range(256)) * 64  # four pages
    f.write_at(None, 100, data, append=False)
    assert f.read_at(100, len(data)) == data
    assert f.read_at(PAGE_SIZE - 3, 10) == data[PAGE_SIZE - 103 : PAGE_SIZE - 93]


def test_truncate_zeroes_the_tail(fs: TmpfsFilesystem) -> None:
    f = RegularFile(fs, 0o644, 0, 0)
    f.write_at(None, 0, b"x" * (2 * PAGE_SIZE), append=False)
    assert f.set_size(None, 10)
    assert sorted(f.pages) == [0]
    assert f.set_size(None, 20)
    assert f.read_at(0, 20) == b"x" * 10 + bytes(10)
    assert not f.set_size(None, 20)


def test_punch_hole_and_seek(fs: TmpfsFilesystem) -> None:
    f = RegularFile(fs, 0o644, 0, 0)
    f.write_at(None, 0, b"y" * (3 * PAGE_SIZE), append=False)
    f.allocate(F.FALLOC_FL_PUNCH_HOLE | F.FALLOC_FL_KEEP_SIZE, 10, 2 * PAGE_SIZE)
    assert sorted(f.pages) == [0, 2]
    assert f.read_at(0, 12) == b"y" * 10 + bytes(2)
    assert f.seek_data_or_hole(0, data=False) == PAGE_SIZE
    assert f.seek_data_or_hole(PAGE_SIZE, data=True) == 2 * PAGE_SIZE
    with pytest.raises(SyscallError) as e:
        f.seek_data_or_hole(3 * PAGE_SIZE, data=True)
    assert e.value.errno == errno.ENXIO


def test_size_limit_is_enospc_and_pages_are_returned(fs: TmpfsFilesystem) -> None:
    f = RegularFile(fs, 0o644, 0, 0)
    f.inc_open()
    with pytest.raises(SyscallError) as e:
        f.write_at(None, 0, bytes(65 * PAGE_SIZE), append=False)
    assert e.value.errno == errno.ENOSPC
    f.write_at(None, 0, bytes(64 * PAGE_SIZE), append=False)
    before = fs.mf.allocated
    # Unlinked and closed: the pages go back.
    f.nlink = 0
    f.on_unlinked()
    assert fs.mf.allocated == before
    f.dec_open()
    assert fs.mf.allocated == before - 64 * PAGE_SIZE
    g = RegularFile(fs, 0o644, 0, 0)
    g.write_at(None, 0, bytes(64 * PAGE_SIZE), append=False)


def test_directory_offsets_survive_removal(fs: TmpfsFilesystem) -> None:
    d = Directory(fs, 0o755, 0, 0)
    parent = TmpfsDentry(d, None, b"")
    kids = []
    for name in (b"a", b"b", b"c", b"d"):
        kid = TmpfsDentry(RegularFile(fs, 0o644, 0, 0), parent, name)
        d.insert(kid)
        kids.append(kid)
    resume = kids[1].dir_offset + 1
    d.remove(kids[2])
    assert [k.name for k in d.entries_from(resume)] == [b"d"]
    d.insert(TmpfsDentry(RegularFile(fs, 0o644, 0, 0), parent, b"e"))
    assert [k.name for k in d.entries_from(resume)] == [b"d", b"e"]
    assert d.attr_size() == (4 + 2) * 20
