"""Tests of MemoryManager's mmap family, faults and /proc views on a fake
MMU (see fake_platform.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import mman as M
from pkg.abi.linux import signal as S
from pkg.abi.linux.mman import PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.core import STACK_GUARD_GAP
from pkg.sentry.mm.fake_platform import App, FakePlatform
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.mm.file_cache_test import FakeFile
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.mm.memory_manager import MemoryManager, MmapOpts
from pkg.sentry.pgalloc.memory_file import MemoryFile

RW = PROT_READ | PROT_WRITE
INF = L.RLIM_INFINITY


class Limits:
    """Limits is a settable Rlimits."""

    def __init__(self, **soft: int) -> None:
        self.values = {
            L.RLIMIT_AS: INF,
            L.RLIMIT_DATA: INF,
            L.RLIMIT_STACK: 8 << 20,
            L.RLIMIT_MEMLOCK: 8 << 20,
        }
        for name, v in soft.items():
            self.values[getattr(L, name)] = v

    def soft(self, resource: int) -> int:
        return self.values[resource]


@pytest.fixture
def mf() -> Iterator[MemoryFile]:
    f = MemoryFile(size=1 << 36)
    yield f
    f.close()


def check_invariants(mm: MemoryManager) -> None:
    """Checks what must hold between operations: every pma inside one vma,
    platform mappings only where pmas are mapped and with their protection,
    and the mapped-size count."""
    assert mm.total_vm == sum(v.end - v.start for v in mm.vmas)
    for pma in mm.pmas:
        vma = mm.vmas.find(pma.start)
        assert vma is not None and pma.end <= vma.end, pma
        assert mm.mf.refs(pma.file_offset, pma.end - pma.start), pma
    pages = mm.address_space.pages  # type: ignore[attr-defined]
    for page, (offset, prot) in pages.items():
        pma = mm.pmas.find(page * PAGE_SIZE)
        assert pma is not None and pma.mapped, hex(page * PAGE_SIZE)
        assert offset == pma.file_offset + page * PAGE_SIZE - pma.start
        assert prot == pma.prot


@pytest.fixture
def mm(mf: MemoryFile) -> Iterator[MemoryManager]:
    m = MemoryManager(FakePlatform(mf), mf)
    m.set_layout()
    yield m
    check_invariants(m)
    m.release()
    assert mf.allocated == 0, "pages leaked"


def vmas(mm: MemoryManager) -> list[tuple[int, int, int]]:
    return [(v.start, v.end, v.prot) for v in mm.vmas]


def errno_of(fn: object, *args: object) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)  # type: ignore[operator]
    return e.value.errno


# Placement.


def test_mappings_go_top_down_below_mmap_base(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    b = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    assert a < mm.mmap_base
    assert b == a - PAGE_SIZE
    # Adjacent anonymous mappings with the same attributes merge.
    assert len(mm.vmas) == 1


def test_hint_is_used_when_free_and_rounded_up(mm: MemoryManager) -> None:
    hint = 0x10000000
    assert mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, addr=hint + 1)) == (
        hint + PAGE_SIZE
    )
    assert mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, addr=hint + 1)) != (
        hint + PAGE_SIZE
    )


def test_fixed_and_noreplace(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=RW))
    App(mm).write(a, b"x" * 4 * PAGE_SIZE)
    assert mm.mmap(
        MmapOpts(length=PAGE_SIZE, prot=PROT_READ, addr=a + PAGE_SIZE, fixed=True)
    ) == (a + PAGE_SIZE)
    assert App(mm).read(a + PAGE_SIZE, 1) == b"\0"
    assert App(mm).read(a, 1) == b"x"
    assert (
        errno_of(mm.mmap, MmapOpts(length=PAGE_SIZE, prot=RW, addr=a, noreplace=True))
        == errno.EEXIST
    )
    assert (
        errno_of(mm.mmap, MmapOpts(length=PAGE_SIZE, prot=RW, addr=0, fixed=True))
        == errno.EPERM
    )


def test_map32_places_below_2_gib(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, map32=True))
    assert 0x40000000 <= a < 0x80000000


def test_new_mappings_keep_out_of_the_stack_guard_gap(mm: MemoryManager) -> None:
    top = 0x500000000
    stack = mm.mmap(
        MmapOpts(length=PAGE_SIZE, prot=RW, addr=top, fixed=True, growsdown=True)
    )
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, addr=stack - PAGE_SIZE))
    assert not stack - STACK_GUARD_GAP <= a < stack


# munmap, mprotect.


def test_munmap_splits_and_drops_pages(mm: MemoryManager, mf: MemoryFile) -> None:
    a = mm.mmap(MmapOpts(length=3 * PAGE_SIZE, prot=RW))
    App(mm).write(a, b"z" * 3 * PAGE_SIZE)
    mm.munmap(a + PAGE_SIZE, PAGE_SIZE)
    assert vmas(mm) == [
        (a, a + PAGE_SIZE, RW),
        (a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE, RW),
    ]
    with pytest.raises(App.Signal) as e:
        App(mm).read(a + PAGE_SIZE, 1)
    assert (e.value.signo, e.value.code) == (S.SIGSEGV, S.SEGV_MAPERR)
    assert mf.allocated == 2 * PAGE_SIZE


def test_mprotect_applies_up_to_a_hole(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=3 * PAGE_SIZE, prot=RW))
    mm.munmap(a + 2 * PAGE_SIZE, PAGE_SIZE)
    assert errno_of(mm.mprotect, a, 3 * PAGE_SIZE, PROT_READ) == errno.ENOMEM
    assert vmas(mm) == [(a, a + 2 * PAGE_SIZE, PROT_READ)]
    with pytest.raises(App.Signal) as e:
        App(mm).write(a, b"w")
    assert e.value.code == S.SEGV_ACCERR
    mm.mprotect(a, PAGE_SIZE, RW)
    App(mm).write(a, b"w")
    assert vmas(mm) == [
        (a, a + PAGE_SIZE, RW),
        (a + PAGE_SIZE, a + 2 * PAGE_SIZE, PROT_READ),
    ]


def test_mprotect_cannot_exceed_max_prot(mm: MemoryManager, mf: MemoryFile) -> None:
    cache = FileCache(mf, None, size=PAGE_SIZE)
    a = mm.mmap(
        MmapOpts(
            length=PAGE_SIZE,
            prot=PROT_READ,
            max_prot=PROT_READ | PROT_EXEC,
            private=False,
            mappable=cache,
            file=cache,
        )
    )
    cache.dec_ref()
    assert errno_of(mm.mprotect, a, PAGE_SIZE, RW) == errno.EACCES
    mm.mprotect(a, PAGE_SIZE, PROT_READ | PROT_EXEC)


def test_exec_fault_classification(mm: MemoryManager) -> None:
    code = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=PROT_READ | PROT_EXEC))
    data = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    App(mm).execute(code)
    with pytest.raises(App.Signal) as e:
        App(mm).execute(data)
    assert (e.value.signo, e.value.code, e.value.addr) == (
        S.SIGSEGV,
        S.SEGV_ACCERR,
        data,
    )


# brk.


def test_brk_grows_shrinks_and_respects_rlimit_data(mm: MemoryManager) -> None:
    mm.set_brk_start(0x1000000)
    start = mm.brk
    assert mm.set_brk(start + 3 * PAGE_SIZE) == start + 3 * PAGE_SIZE
    App(mm).write(start, b"heap")
    assert mm.set_brk(start + PAGE_SIZE) == start + PAGE_SIZE
    with pytest.raises(App.Signal):
        App(mm).read(start + 2 * PAGE_SIZE, 1)
    assert mm.set_brk(start - PAGE_SIZE) == start + PAGE_SIZE
    limits = Limits(RLIMIT_DATA=4 * PAGE_SIZE)
    assert mm.set_brk(start + 8 * PAGE_SIZE, limits) == start + PAGE_SIZE
    assert mm.set_brk(start + 4 * PAGE_SIZE, limits) == start + 4 * PAGE_SIZE
    assert b"[heap]" in mm.maps_text()


# Limits.


def test_rlimit_as_and_data(mm: MemoryManager) -> None:
    total = sum(v.end - v.start for v in mm.vmas)
    limits = Limits(RLIMIT_AS=total + 4 * PAGE_SIZE)
    mm.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=RW), limits)
    assert (
        errno_of(mm.mmap, MmapOpts(length=PAGE_SIZE, prot=PROT_READ), limits)
        == errno.ENOMEM
    )
    limits = Limits(RLIMIT_DATA=4 * PAGE_SIZE)
    assert (
        errno_of(mm.mmap, MmapOpts(length=8 * PAGE_SIZE, prot=RW), limits)
        == errno.ENOMEM
    )
    # Read-only and shared mappings are not data.
    mm.mmap(MmapOpts(length=8 * PAGE_SIZE, prot=PROT_READ), limits)
    mm.mmap(MmapOpts(length=8 * PAGE_SIZE, prot=RW, private=False), limits)


def test_huge_accounted_mapping_fails_unless_noreserve(mm: MemoryManager) -> None:
    size = 1 << 46
    assert errno_of(mm.mmap, MmapOpts(length=size, prot=RW)) == errno.ENOMEM
    a = mm.mmap(MmapOpts(length=size, prot=RW, noreserve=True))
    App(mm).write(a + size - PAGE_SIZE, b"end")
    mm.munmap(a, size)


def test_stack_growth_and_rlimit_stack(mm: MemoryManager) -> None:
    top = 0x600000000
    mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, addr=top, fixed=True, growsdown=True))
    mm.rlimits = Limits(RLIMIT_STACK=8 * PAGE_SIZE)
    App(mm).write(top - 5 * PAGE_SIZE, b"grown")
    assert mm.vmas.find(top - 5 * PAGE_SIZE) is mm.vmas.find(top)
    with pytest.raises(App.Signal) as e:
        App(mm).write(top - 20 * PAGE_SIZE, b"too far")
    assert e.value.code == S.SEGV_MAPERR
    # copy_out grows the stack as a kernel access does.
    mm.copy_out(top - 7 * PAGE_SIZE, b"k")


# mremap.


def test_mremap_moves_pages_without_copying(mm: MemoryManager, mf: MemoryFile) -> None:
    a = mm.mmap(MmapOpts(length=2 * PAGE_SIZE, prot=RW))
    App(mm).write(a, b"moved")
    pma = mm.pmas.find(a)
    assert pma is not None
    offset = pma.file_offset
    mm.mmap(
        MmapOpts(length=PAGE_SIZE, prot=PROT_READ, addr=a + 2 * PAGE_SIZE, fixed=True)
    )
    b = mm.mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, M.MREMAP_MAYMOVE)
    assert b != a
    pma = mm.pmas.find(b)
    assert pma is not None and pma.file_offset == offset
    assert App(mm).read(b, 5) == b"moved"
    assert mm.copy_in(b, 5) == b"moved"


def test_mremap_dontunmap_and_duplicate(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    App(mm).write(a, b"data")
    b = mm.mremap(a, PAGE_SIZE, PAGE_SIZE, M.MREMAP_MAYMOVE | M.MREMAP_DONTUNMAP)
    assert App(mm).read(b, 4) == b"data"
    assert App(mm).read(a, 4) == bytes(4)

    s = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, private=False))
    d = mm.mremap(s, 0, PAGE_SIZE, M.MREMAP_MAYMOVE)
    App(mm).write(d, b"shared")
    assert App(mm).read(s, 6) == b"shared"
    assert errno_of(mm.mremap, a, 0, PAGE_SIZE, M.MREMAP_MAYMOVE) == errno.EINVAL


# madvise, mincore, mlock.


def test_madvise_dontneed_and_mincore(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=RW))
    assert mm.mincore(a, 4 * PAGE_SIZE) == bytes(4)
    App(mm).write(a + PAGE_SIZE, b"1")
    assert mm.mincore(a, 4 * PAGE_SIZE) == b"\0\1\0\0"
    mm.madvise(a, 4 * PAGE_SIZE, M.MADV_DONTNEED)
    assert mm.mincore(a, 4 * PAGE_SIZE) == bytes(4)
    assert App(mm).read(a + PAGE_SIZE, 1) == b"\0"


def test_mlock_accounting(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=8 * PAGE_SIZE, prot=RW))
    limits = Limits(RLIMIT_MEMLOCK=4 * PAGE_SIZE)
    mm.mlock(a, 2 * PAGE_SIZE, rl=limits)
    mm.mlock(a, 4 * PAGE_SIZE, rl=limits)
    assert mm.locked_bytes() == 4 * PAGE_SIZE
    assert errno_of(mm.mlock, a, 8 * PAGE_SIZE, False, limits) == errno.ENOMEM
    mm.mlock(a, 8 * PAGE_SIZE, False, limits, True)
    assert mm.vm_status()["VmLck"] == 32
    mm.munlockall()
    assert mm.locked_bytes() == 0


# File mappings.


def test_shared_file_mapping_writes_back_on_msync_and_munmap(
    mm: MemoryManager, mf: MemoryFile
) -> None:
    f = FakeFile(b"." * (2 * PAGE_SIZE))
    cache = FileCache(mf, f)
    ident = MappingIdentity(0x801, 42, "/data/file")
    a = mm.mmap(
        MmapOpts(
            length=2 * PAGE_SIZE,
            prot=RW,
            private=False,
            mappable=cache,
            file=cache,
            identity=ident,
        )
    )
    App(mm).write(a + 3, b"abc")
    assert cache.read(3, 3) == b"abc"
    assert f.data[3:6] == b"..."
    mm.msync(a, 2 * PAGE_SIZE, M.MS_SYNC)
    assert f.data[3:6] == b"abc"
    App(mm).write(a + PAGE_SIZE, b"def")
    line = mm.maps_text().decode().splitlines()
    assert any(
        entry.endswith(" /data/file") and " rw-s 00000000 08:01 42 " in entry
        for entry in line
    )
    mm.munmap(a, 2 * PAGE_SIZE)
    assert f.data[PAGE_SIZE : PAGE_SIZE + 3] == b"def"
    cache.dec_ref()


def test_private_file_mapping_and_truncate(mm: MemoryManager, mf: MemoryFile) -> None:
    f = FakeFile(b"f" * (3 * PAGE_SIZE))
    cache = FileCache(mf, f)
    a = mm.mmap(MmapOpts(length=3 * PAGE_SIZE, prot=RW, mappable=cache, file=cache))
    App(mm).write(a, b"private")
    assert f.data[:7] == b"fffffff"
    assert App(mm).read(a + 2 * PAGE_SIZE, 1) == b"f"
    f.data = f.data[:PAGE_SIZE]
    cache.truncate(PAGE_SIZE)
    with pytest.raises(App.Signal) as e:
        App(mm).read(a + 2 * PAGE_SIZE, 1)
    assert (e.value.signo, e.value.code) == (S.SIGBUS, S.BUS_ADRERR)
    assert App(mm).read(a, 7) == b"private"
    cache.dec_ref()


# /proc.


def test_maps_text_format(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=PROT_READ))
    mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW, private=False))
    mm.mmap(MmapOpts(length=PAGE_SIZE, prot=PROT_NONE, addr=0x700000000))
    text = mm.maps_text().decode()
    assert f"{a:08x}-{a + PAGE_SIZE:08x} r--p 00000000 00:00 0 \n" in text
    zero = [line for line in text.splitlines() if "/dev/zero" in line]
    assert len(zero) == 1
    assert zero[0].index("/dev/zero (deleted)") == 73
    assert " rw-s " in zero[0]
    assert "700000000-700001000 ---p" in text


def test_smaps_counts_resident_pages(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=4 * PAGE_SIZE, prot=RW))
    App(mm).write(a, b"x" * (2 * PAGE_SIZE))
    text = mm.smaps_text().decode()
    block = text[text.index(f"{a:08x}-") :]
    assert "Size:                 16 kB\n" in block
    assert "Rss:                   8 kB\n" in block
    assert "Private_Dirty:         8 kB\n" in block
    assert "VmFlags: rd wr mr mw me ac \n" in block


def test_platform_mapping_failures_are_contained(mm: MemoryManager) -> None:
    a = mm.mmap(MmapOpts(length=2 * PAGE_SIZE, prot=RW))
    App(mm).write(a, b"before")
    child = mm.fork()
    space = child.address_space
    space.fail_maps = True  # type: ignore[attr-defined]
    # Syscalls still work: mapping is an optimisation.
    b = child.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    child.mprotect(a, PAGE_SIZE, PROT_READ)
    # A fault that cannot be mapped kills the task, as an out-of-memory
    # fault does.
    assert child.handle_fault(a, 0, 0x1000, S.SEGV_MAPERR) == (
        S.SIGKILL,
        S.SI_KERNEL,
    )
    # copy-in still works through the MemoryFile.
    assert child.copy_in(a, 6) == b"before"
    child.copy_out(b, b"x")
    space.fail_maps = False  # type: ignore[attr-defined]
    assert App(child).read(b, 1) == b"x"
    check_invariants(child)
    child.release()


def test_fault_repeating_without_progress_is_sigsegv(mm: MemoryManager) -> None:
    # The sentry maps the page, yet the platform keeps faulting there (a
    # bookkeeping bug, simulated by unmapping the page behind the mm's
    # back): the task gets SIGSEGV instead of spinning.
    a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=RW))
    results = []
    for _ in range(20):
        results.append(mm.handle_fault(a, 0, 0x1000, S.SEGV_MAPERR))
        mm.address_space.unmap(a, PAGE_SIZE)
        mm.pmas.find(a).mapped = False  # type: ignore[union-attr]
        if results[-1] is not None:
            break
    assert results[-1] == (S.SIGSEGV, S.SEGV_ACCERR)
    assert results[:-1] == [None] * (len(results) - 1)


def test_fault_at_one_place_after_a_syscall_is_progress(mm: MemoryManager) -> None:
    # A program that maps files one after another at the same address and
    # reads each with the same instruction faults at the same (address,
    # rip) every time, with system calls in between (git pack-objects).
    for _ in range(20):
        a = mm.mmap(MmapOpts(length=PAGE_SIZE, prot=PROT_READ))
        assert mm.handle_fault(a, 0, 0x1000, S.SEGV_MAPERR) is None
        mm.munmap(a, PAGE_SIZE)
        mm.note_progress()
