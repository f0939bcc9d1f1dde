"""Tests of MemoryManager.fork: copy-on-write of private memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pkg.abi.linux import mman as M
from pkg.abi.linux.mman import PAGE_SIZE, PROT_READ, PROT_WRITE
from pkg.sentry.mm.fake_platform import App, FakePlatform
from pkg.sentry.mm.memory_manager import MemoryManager, MmapOpts
from pkg.sentry.pgalloc.memory_file import MemoryFile

RW = PROT_READ | PROT_WRITE


@pytest.fixture
def mf() -> Iterator[MemoryFile]:
    f = MemoryFile(size=1 << 36)
    yield f
    f.close()


def new_mm(mf: MemoryFile) -> MemoryManager:
    mm = MemoryManager(FakePlatform(mf), mf)
    mm.set_layout()
    return mm


def test_private_pages_are_copied_only_when_written(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=16 * PAGE_SIZE, prot=RW))
    app = App(parent)
    for i in range(16):
        app.write(addr + i * PAGE_SIZE, bytes([i + 1]) * PAGE_SIZE)
    committed = mf.committed

    child = parent.fork()
    capp = App(child)
    assert mf.committed == committed, "fork copied memory"
    assert capp.read(addr + 3 * PAGE_SIZE, 4) == b"\x04" * 4

    capp.write(addr + 3 * PAGE_SIZE, b"child")
    app.write(addr + 5 * PAGE_SIZE, b"parent")
    assert app.read(addr + 3 * PAGE_SIZE, 5) == b"\x04" * 5
    assert capp.read(addr + 3 * PAGE_SIZE, 5) == b"child"
    assert capp.read(addr + 5 * PAGE_SIZE, 6) == b"\x06" * 6
    assert app.read(addr + 5 * PAGE_SIZE, 6) == b"parent"

    child.release()
    parent.release()
    assert mf.allocated == 0


def test_write_after_other_side_copied_does_not_copy_again(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    app = App(parent)
    app.write(addr, b"a")
    child = parent.fork()
    App(child).write(addr, b"b")
    before = mf.allocated
    pma = parent.pmas.find(addr)
    assert pma is not None and not pma.writable
    offset = pma.file_offset

    app.write(addr, b"c")

    assert mf.allocated == before
    pma = parent.pmas.find(addr)
    assert pma is not None and pma.writable and pma.file_offset == offset
    assert App(child).read(addr, 1) == b"b"


def test_child_exit_makes_parent_pages_writable_in_place(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=RW))
    app = App(parent)
    app.write(addr, b"x" * 4 * PAGE_SIZE)
    child = parent.fork()
    child.release()
    before = mf.allocated
    app.write(addr + PAGE_SIZE, b"y")
    assert mf.allocated == before
    assert app.read(addr, 2 * PAGE_SIZE + 1)[::PAGE_SIZE] == b"xyx"


def test_copy_out_from_the_sentry_breaks_cow(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=2 * PAGE_SIZE, prot=RW))
    App(parent).write(addr, b"old")
    child = parent.fork()

    child.copy_out(addr, b"new")

    assert App(parent).read(addr, 3) == b"old"
    assert App(child).read(addr, 3) == b"new"
    assert parent.copy_in(addr, 3) == b"old"


def test_shared_anonymous_memory_stays_shared(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=2 * PAGE_SIZE, prot=RW, private=False))
    App(parent).write(addr, b"before")
    child = parent.fork()
    App(child).write(addr, b"child!")
    assert App(parent).read(addr, 6) == b"child!"
    App(parent).write(addr + PAGE_SIZE, b"parent")
    assert App(child).read(addr + PAGE_SIZE, 6) == b"parent"
    child.release()
    parent.release()
    assert mf.allocated == 0


def test_dontfork_and_wipeonfork(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    a = parent.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    b = parent.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    App(parent).write(a, b"a")
    App(parent).write(b, b"b")
    parent.madvise(a, PAGE_SIZE, M.MADV_DONTFORK)
    parent.madvise(b, PAGE_SIZE, M.MADV_WIPEONFORK)

    child = parent.fork()

    with pytest.raises(App.Signal) as e:
        App(child).read(a, 1)
    assert e.value.code == 1  # SEGV_MAPERR
    assert App(child).read(b, 1) == b"\0"
    assert App(parent).read(b, 1) == b"b"


def test_fork_of_256_mib_copies_nothing_up_front(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    size = 256 << 20
    addr = parent.mmap(MmapOpts(length=size, prot=RW))
    app = App(parent)
    # Touch one byte in every page.
    for page in range(addr, addr + size, PAGE_SIZE):
        app.write(page, b"\1")
    committed = mf.committed
    assert committed >= size

    child = parent.fork()

    assert mf.committed - committed < (1 << 20)
    App(child).write(addr + 100 * PAGE_SIZE, b"\2")
    assert mf.committed - committed < (1 << 20)
    child.release()
    parent.release()


def test_fork_protects_the_parent_in_the_platform(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    App(parent).write(addr, b"x")
    parent.fork()
    _, prot = parent.address_space.pages[addr // PAGE_SIZE]  # type: ignore[attr-defined]
    assert prot == PROT_READ


def test_write_only_memory_is_readable_while_copy_on_write(mf: MemoryFile) -> None:
    parent = new_mm(mf)
    addr = parent.mmap(MmapOpts(length=PAGE_SIZE, prot=PROT_WRITE))
    App(parent).write(addr, b"w")
    child = parent.fork()
    # x86 cannot map write-only pages: they read fine on both sides.
    assert App(child).read(addr, 1) == b"w"
    assert App(parent).read(addr, 1) == b"w"
    App(child).write(addr, b"c")
    assert App(parent).read(addr, 1) == b"w"
