"""MMCore: the state of an address space and the vma and pma machinery.

The MemoryManager is assembled from mixins that all build on this class:
the mmap family (syscalls.py), fault handling (fault.py), copy-in/out
(io.py) and the /proc views (procfs.py). MMCore holds the state and the
operations they share:

- vmas (what the application mapped) and pmas (the MemoryFile pages behind
  them, with one MemoryFile reference each), in two SegmentLists. Every pma
  lies inside one vma: whenever a vma is split, the pmas are split at the same
  address.
- populate: give a range of a vma its pmas (allocate anonymous memory, or ask
  the Mappable to translate), and for writes make them writable in place
  (break copy-on-write by copying, or translating a shared file page for
  write).
- the platform address space: a pma is mapped there (`Pma.mapped`) with the
  vma's protection, minus PROT_WRITE while the pma is not writable, so the
  first write to a copy-on-write or clean shared file page faults into the
  sentry. Nothing is ever mapped in the platform address space without a
  pma behind it.

Locking: `mu` guards everything here; Mappable, MemoryFile and platform
locks are taken inside it. File references that a removed vma held are
dropped after `mu` is released (`_drop_deferred`), since closing a file can
run arbitrary code.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from typing import TYPE_CHECKING, Protocol

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux.mman import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
    page_round_up,
)
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.mm.segments import SegmentList
from pkg.sentry.mm.vma import LOCK_NONE, Pma, Vma

if TYPE_CHECKING:
    from pkg.platform.platform import AddressSpace, Platform
    from pkg.sentry.mm.aio import AIOContext
    from pkg.sentry.mm.mappable import RefCounted
    from pkg.sentry.pgalloc.memory_file import MemoryFile

log = logging.getLogger(__name__)

RLIM_INFINITY = L.RLIM_INFINITY

# Linux amd64 layout parameters (arch/x86/mm/mmap.c, fs/binfmt_elf.c).
_STACK_RND_PAGES = 1 << 22  # 16 GiB of stack top randomization
_MMAP_RND_PAGES = 1 << 28  # mmap_rnd_bits = 28
_BRK_RND = 1 << 25  # 32 MiB
_MIN_GAP = 128 << 20
DEFAULT_STACK_SIZE = 8 << 20
# The gap kept free below a MAP_GROWSDOWN vma (mm/mmap.c stack_guard_gap).
STACK_GUARD_GAP = 256 * PAGE_SIZE

# Private anonymous mappings up to this size get their MemoryFile pages and
# platform mapping at mmap time, so touching them never faults into the
# sentry (the host populates the pages). Larger ones, MAP_NORESERVE ones and
# PROT_NONE ones are populated by faults, ANON_CHUNK at a time.
EAGER_LIMIT = 64 << 20
ANON_CHUNK = 2 << 20
# The span copied when a write breaks copy-on-write (aligned, within the
# pma): large enough to keep faults rare, small enough to keep copies cheap.
COW_CHUNK = 16 * PAGE_SIZE
# The span a file fault translates and maps beyond the faulting page.
FILE_FAULT_AROUND = 16 * PAGE_SIZE

_ids = itertools.count(1)


def _commit_limit() -> int:
    # Heuristic overcommit (vm.overcommit_memory=0) refuses a single request
    # larger than RAM plus swap; the sandbox has no swap of its own.
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 1 << 62


COMMIT_LIMIT = _commit_limit()


def random_pages(n: int) -> int:
    """Returns a random multiple of PAGE_SIZE below n pages."""
    return (int.from_bytes(os.urandom(8), "little") % n) * PAGE_SIZE


class Rlimits(Protocol):
    """Rlimits is what the mm reads of a process's resource limits (a
    kernel LimitSet)."""

    def soft(self, resource: int) -> int:
        """Returns the soft limit of resource."""
        ...


def effective_prot(vma: Vma, pma: Pma) -> int:
    """Returns the protection pma is mapped with in the platform: the vma's,
    without write permission until the pages may be written in place (on
    x86 a writable page is readable, so PROT_WRITE alone becomes PROT_READ)."""
    prot = vma.prot
    if not pma.writable and prot & PROT_WRITE:
        prot = (prot & ~PROT_WRITE) | PROT_READ
    return prot


def accessible(prot: int) -> bool:
    """Reports whether a vma with prot can be accessed at all (on x86 write
    and exec imply read)."""
    return bool(prot & (PROT_READ | PROT_WRITE | PROT_EXEC))


class MMCore:
    """MMCore is the state of one application address space.

    Attributes:
        mu: guards vmas, pmas, the layout and the platform address space.
        vmas: the application's mappings.
        pmas: the MemoryFile pages behind them.
        address_space: the platform address space application code runs in.
        users: tasks using this address space (CLONE_VM shares it).
    """

    def __init__(self, platform: Platform, mf: MemoryFile) -> None:
        self.platform = platform
        self.mf = mf
        self.mu = threading.Lock()
        self.vmas: SegmentList[Vma] = SegmentList()
        self.pmas: SegmentList[Pma] = SegmentList()
        self.address_space: AddressSpace = platform.new_address_space()
        self.min_address = max(platform.min_user_address, PAGE_SIZE)
        self.max_address = platform.max_user_address
        self.id = next(_ids)
        self.stack_top = 0
        self.mmap_base = 0
        self.brk_start = 0
        self.brk = 0
        # The executable's code and data, for /proc/[pid]/stat.
        self.start_code = self.end_code = self.start_data = self.end_data = 0
        # Where the initial stack pointer points ([stack] in maps).
        self.start_stack = 0
        # Addresses of argv, envp and auxv for /proc/self/{cmdline,environ,auxv}.
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        self.auxv: list[tuple[int, int]] = []
        # The executable's VirtualDentry, for /proc/[pid]/exe (no reference
        # is held: TODO(#5): keep its mount busy as Linux's exe_file does).
        self.executable: object | None = None
        # Address of the vDSO image if one is mapped ([vdso] in maps).
        self.vdso_start = 0
        # Number of users (tasks) of this address space.
        self.users = 1
        # The lock mode new mappings get (mlockall(MCL_FUTURE)).
        self.def_lock = LOCK_NONE
        # Registered membarrier(2) commands (MEMBARRIER_CMD_REGISTER_*).
        self.membarrier_registered = 0
        # Native AIO contexts by ring address (io_setup(2)): they belong to
        # this address space and are not inherited by fork.
        self.aio_contexts: dict[int, AIOContext] = {}
        # The limits checked when a call gives none: the owning process's.
        self.rlimits: Rlimits | None = None
        # Bytes mapped, and their high-water mark (VmSize, VmPeak).
        self.total_vm = 0
        self.peak_vm = 0
        # File references of removed vmas, dropped once mu is released.
        self._deferred: list[RefCounted] = []

    # Layout.

    def set_layout(self, stack_size: int = DEFAULT_STACK_SIZE) -> None:
        """Chooses randomized stack and mmap bases as Linux amd64 does."""
        self.stack_top = page_round_down(
            self.max_address - random_pages(_STACK_RND_PAGES)
        )
        gap = min(max(stack_size, _MIN_GAP), self.max_address // 6 * 5)
        gap += STACK_GUARD_GAP + _STACK_RND_PAGES * PAGE_SIZE
        self.mmap_base = page_round_down(
            self.max_address - gap - random_pages(_MMAP_RND_PAGES)
        )

    def pie_base(self) -> int:
        """Returns where a PIE executable is loaded (ELF_ET_DYN_BASE)."""
        base = page_round_down(self.max_address // 3 * 2)
        return base + random_pages(_MMAP_RND_PAGES) // 16

    def set_brk_start(self, end_of_image: int) -> None:
        """Places the heap after the executable, randomized."""
        self.brk_start = self.brk = page_round_up(end_of_image) + (
            random_pages(_BRK_RND // PAGE_SIZE)
        )

    # Accounting.

    def _vm_counts_locked(self) -> tuple[int, int, int, int]:
        """Returns (total, data, stack, locked) mapped bytes, classified as
        Linux's vm_stat_account does."""
        total = data = stack = locked = 0
        for vma in self.vmas:
            size = vma.end - vma.start
            total += size
            if vma.growsdown:
                stack += size
            elif vma.private and vma.prot & PROT_WRITE:
                data += size
            if vma.lock != LOCK_NONE:
                locked += size
        return total, data, stack, locked

    def _check_expand_locked(
        self,
        rl: Rlimits | None,
        size: int,
        data: bool,
        freed: int = 0,
        account: bool = False,
    ) -> None:
        """Fails with ENOMEM if mapping size more bytes (of which `freed`
        replace existing mappings) would pass RLIMIT_AS, or RLIMIT_DATA for a
        private writable mapping (mm/mmap.c may_expand_vm), or if an
        accounted (committed) request is larger than memory, as heuristic
        overcommit refuses it (mm/util.c __vm_enough_memory)."""
        if account and size > COMMIT_LIMIT:
            raise SyscallError(errno.ENOMEM)
        rl = rl or self.rlimits
        if rl is None:
            return
        as_limit = rl.soft(L.RLIMIT_AS)
        data_limit = rl.soft(L.RLIMIT_DATA) if data else RLIM_INFINITY
        if as_limit == RLIM_INFINITY and data_limit == RLIM_INFINITY:
            return
        total, data_vm, _, _ = self._vm_counts_locked()
        if total - freed + size > as_limit:
            raise SyscallError(errno.ENOMEM)
        if data and data_vm + size > data_limit:
            raise SyscallError(errno.ENOMEM)

    def _note_peak_locked(self) -> None:
        self.peak_vm = max(self.peak_vm, self.total_vm)

    # Vmas.

    def _split_vma(self, vma: Vma, addr: int) -> Vma:
        # A SegmentList split callback: the new piece holds its own file
        # reference, and pmas are split at the same address.
        tail = vma.split(addr)
        if tail.file is not None:
            tail.file.inc_ref()
        pma = self.pmas.find(addr)
        if pma is not None and pma.start < addr:
            self.pmas.insert(pma.split(addr))
        return tail

    def _isolate_locked(self, start: int, end: int) -> list[Vma]:
        """Splits vmas and pmas at start and end; returns the vmas inside."""
        return self.vmas.isolate(start, end, self._split_vma)

    def _insert_vma_locked(self, vma: Vma) -> Vma:
        """Adds a vma whose file reference the caller took, tells its
        mappable, and merges it with its neighbours; returns the vma that
        now holds the range."""
        self.vmas.insert(vma)
        self.total_vm += vma.end - vma.start
        if vma.mappable is not None:
            vma.mappable.add_mapping(
                self, vma.start, vma.end, vma.offset, self._vma_writable(vma)
            )
        return self._merge_vma_locked(vma)

    @staticmethod
    def _vma_writable(vma: Vma) -> bool:
        # What a Mappable calls a writable mapping: VM_SHARED|VM_MAYWRITE.
        return not vma.private and bool(vma.max_prot & PROT_WRITE)

    def _merge_vma_locked(self, vma: Vma) -> Vma:
        """Merges vma with the vmas on either side where compatible."""
        prev = self.vmas.last_before(vma.start)
        if prev is not None and prev.can_merge(vma):
            self.vmas.remove(vma)
            prev.end = vma.end
            if vma.file is not None:
                self._deferred.append(vma.file)
            vma = prev
        nxt = self.vmas.first_at_or_after(vma.end)
        if nxt is not None and vma.can_merge(nxt):
            self.vmas.remove(nxt)
            vma.end = nxt.end
            if nxt.file is not None:
                self._deferred.append(nxt.file)
        return vma

    def _merge_range_locked(self, start: int, end: int) -> None:
        """Merges the vmas in [start, end) and their outer neighbours."""
        vma = self.vmas.last_before(start) or self.vmas.first_at_or_after(start)
        while vma is not None and vma.start < end:
            vma = self._merge_vma_locked(vma)
            vma = self.vmas.first_at_or_after(vma.end)

    def _unmap_locked(self, start: int, end: int) -> None:
        """Removes every vma and pma in [start, end) (the core of munmap)."""
        vmas = self._isolate_locked(start, end)
        if not vmas:
            return
        for vma in vmas:
            self.vmas.remove(vma)
            self.total_vm -= vma.end - vma.start
            if vma.mappable is not None:
                vma.mappable.remove_mapping(
                    self, vma.start, vma.end, vma.offset, self._vma_writable(vma)
                )
            if vma.file is not None:
                self._deferred.append(vma.file)
        self._remove_pmas_locked(start, end)

    def _drop_deferred(self) -> None:
        """Drops file references collected under mu. Call without mu."""
        while self._deferred:
            refs, self._deferred = self._deferred, []
            for f in refs:
                f.dec_ref()

    def gaps_locked(
        self, lo: int, hi: int, reverse: bool = False
    ) -> list[tuple[int, int]]:
        """Returns the free ranges of [lo, hi) where a new mapping may go,
        keeping STACK_GUARD_GAP free below every MAP_GROWSDOWN vma."""
        out = []
        cur = lo
        for vma in [*self.vmas.overlapping(lo, hi), None]:  # type: ignore[operator]
            if vma is None:
                stop = hi
            else:
                stop = vma.start
                if vma.growsdown:
                    stop = max(stop - STACK_GUARD_GAP, 0)
            if stop > cur:
                out.append((cur, min(stop, hi)))
            if vma is not None:
                cur = max(cur, vma.end)
        if reverse:
            out.reverse()
        return out

    def _range_free_locked(self, start: int, end: int) -> bool:
        if self.vmas.overlapping(start, end):
            return False
        nxt = self.vmas.first_at_or_after(end)
        return nxt is None or not nxt.growsdown or nxt.start - STACK_GUARD_GAP >= end

    def find_free_locked(self, length: int, hint: int = 0) -> int:
        """Returns where a new mapping of length bytes goes: at the hint if it
        is free, else in the highest gap below mmap_base, else in the lowest
        gap above it (arch_get_unmapped_area_topdown).

        Raises:
            SyscallError: ENOMEM if nothing fits.
        """
        if length > self.max_address - self.min_address:
            raise SyscallError(errno.ENOMEM)
        if hint:
            hint = page_round_up(hint)
            if (
                self.min_address <= hint <= self.max_address - length
                and self._range_free_locked(hint, hint + length)
            ):
                return hint
        base = self.mmap_base or self.max_address
        for lo, hi in self.gaps_locked(self.min_address, base, reverse=True):
            if hi - lo >= length:
                return hi - length
        for lo, hi in self.gaps_locked(base, self.max_address):
            if hi - lo >= length:
                return lo
        raise SyscallError(errno.ENOMEM)

    # Pmas.

    def _remove_pmas_locked(
        self, start: int, end: int, keep_private: bool = False
    ) -> None:
        """Drops the pmas in [start, end) and unmaps them from the platform.
        keep_private keeps private copies (invalidation by a hole punch)."""
        mapped: list[tuple[int, int]] = []
        removed = []
        for pma in self.pmas.isolate(start, end, Pma.split):
            if keep_private and pma.private:
                continue
            self.pmas.remove(pma)
            removed.append(pma)
            if pma.mapped:
                if mapped and mapped[-1][1] == pma.start:
                    mapped[-1] = (mapped[-1][0], pma.end)
                else:
                    mapped.append((pma.start, pma.end))
        # The platform must stop mapping the pages before they can be freed
        # and handed to someone else.
        for lo, hi in mapped:
            self._platform_unmap_locked(lo, hi)
        for pma in removed:
            self.mf.dec_ref(pma.file_offset, pma.end - pma.start)

    def _insert_pma_locked(self, pma: Pma) -> None:
        self.pmas.insert(pma)

    def _populate_locked(
        self, vma: Vma, start: int, end: int, write: bool, optional_end: int = 0
    ) -> int:
        """Gives [start, end) of vma pmas, writable in place if write.

        Args:
            vma: the vma holding the range.
            start: page-aligned start within vma.
            end: page-aligned end within vma.
            write: make the pages writable in place (break copy-on-write,
                translate shared file pages for write).
            optional_end: a file mapping may translate ahead up to here.

        Returns:
            end, or the first address past the end of the mapped file (the
            range is populated up to there).

        Raises:
            SyscallError: ENOMEM when the MemoryFile is exhausted; a
                Mappable's errors (EIO...).
        """
        reached = end
        for lo, hi in self.pmas.gaps(start, end):
            got = self._create_pmas_locked(vma, lo, hi, write, optional_end)
            if got < hi:
                reached = got
                break
        if write:
            self._make_writable_locked(vma, start, reached)
        return reached

    def _create_pmas_locked(
        self, vma: Vma, start: int, end: int, write: bool, optional_end: int
    ) -> int:
        if vma.mappable is None:
            try:
                offset = self.mf.allocate(end - start)
            except MemoryError as e:
                raise SyscallError(errno.ENOMEM) from e
            self._insert_pma_locked(Pma(start, end, offset, True, True))
            return end
        # Translate for write only through shared mappings; private ones
        # copy the page first.
        shared_write = write and not vma.private
        limit = end
        if optional_end > end:
            nxt = self.pmas.first_at_or_after(end)
            limit = min(optional_end, vma.end, nxt.start if nxt else vma.end)
        fstart = vma.file_offset(start)
        translations = vma.mappable.translate(
            fstart, vma.file_offset(end), vma.file_offset(limit), shared_write
        )
        cur = start
        for tr in translations:
            if tr.start != vma.file_offset(cur):
                break
            stop = min(vma.start + (tr.end - vma.offset), limit)
            if stop <= cur:
                break
            self.mf.inc_ref(tr.file_offset, stop - cur)
            self._insert_pma_locked(Pma(cur, stop, tr.file_offset, False, shared_write))
            cur = stop
        return min(cur, end)

    def _make_writable_locked(self, vma: Vma, start: int, end: int) -> None:
        """Makes the pmas in [start, end) writable in place."""
        for pma in self.pmas.isolate(start, end, Pma.split):
            if not pma.writable:
                self._make_pma_writable_locked(vma, pma)

    def _make_pma_writable_locked(self, vma: Vma, pma: Pma) -> None:
        length = pma.end - pma.start
        if not vma.private:
            # A shared file page: translate it again for write, which marks
            # it dirty in the Mappable.
            assert vma.mappable is not None
            self.pmas.remove(pma)
            try:
                got = self._create_pmas_locked(vma, pma.start, pma.end, True, 0)
                if pma.mapped:
                    for new in self.pmas.overlapping(pma.start, got):
                        self._map_pma_locked(vma, new)
                    if got < pma.end:
                        # The file shrank meanwhile: nothing may stay mapped
                        # where no pma is.
                        self._platform_unmap_locked(got, pma.end)
            except BaseException:
                if pma.mapped:
                    self._platform_unmap_locked(pma.start, pma.end)
                    for new in self.pmas.overlapping(pma.start, pma.end):
                        new.mapped = False
                raise
            finally:
                self.mf.dec_ref(pma.file_offset, length)
            return
        if pma.private:
            # Copy-on-write: pages nobody else holds are ours to write.
            runs = self.mf.refs(pma.file_offset, length)
            if len(runs) == 1 and runs[0][2] == 1:
                pma.writable = True
                if pma.mapped:
                    self._map_pma_locked(vma, pma)
                return
            if len(runs) > 1:
                # Split at every change of sharing and handle each piece.
                pieces = [pma]
                for rstart, _, _ in runs[1:]:
                    addr = pma.start + (rstart - pma.file_offset)
                    tail = pieces[-1].split(addr)
                    self.pmas.insert(tail)
                    pieces.append(tail)
                for piece in pieces:
                    self._make_pma_writable_locked(vma, piece)
                return
        # Copy the pages to a fresh private range.
        try:
            new = self.mf.allocate(length)
        except MemoryError as e:
            raise SyscallError(errno.ENOMEM) from e
        old = pma.file_offset
        self.mf.copy_data(new, old, length)
        pma.file_offset = new
        pma.private = True
        pma.writable = True
        try:
            if pma.mapped:
                self._map_pma_locked(vma, pma)
        finally:
            self.mf.dec_ref(old, length)

    def _map_pma_locked(self, vma: Vma, pma: Pma, precommit: bool = False) -> None:
        """Maps pma into the platform address space with vma's protection."""
        if (
            not pma.writable
            and pma.private
            and vma.private
            and vma.prot & PROT_WRITE
            and self.mf.is_exclusive(pma.file_offset, pma.end - pma.start)
        ):
            # The other side of a fork let go of these pages.
            pma.writable = True
        prot = effective_prot(vma, pma)
        try:
            self.address_space.map_file(
                pma.start, pma.end - pma.start, pma.file_offset, prot, precommit
            )
        except OSError as e:
            # Out of host memory or mappings (vm.max_map_count in the stub):
            # make sure nothing stale stays mapped, and fail as Linux does
            # when it cannot map.
            log.warning("mm: platform map of %#x-%#x failed: %s", pma.start, pma.end, e)
            pma.mapped = False
            self._platform_unmap_locked(pma.start, pma.end)
            raise SyscallError(errno.ENOMEM) from e
        pma.mapped = True
        pma.prot = prot

    def _platform_unmap_locked(self, start: int, end: int) -> None:
        """Unmaps [start, end) from the platform address space."""
        try:
            self.address_space.unmap(start, end - start)
        except OSError as e:
            # A stub that is gone maps nothing; anything else would leave
            # pages mapped that may be freed, which must not go unnoticed.
            if e.errno != errno.ESRCH:
                raise

    def _map_range_locked(
        self, vma: Vma, start: int, end: int, precommit: bool = False
    ) -> None:
        """Maps the pmas overlapping [start, end): whole pmas, or exactly the
        range when precommit asks the host to populate it."""
        if precommit:
            self.pmas.isolate(start, end, Pma.split)
        for pma in self.pmas.overlapping(start, end):
            if not pma.mapped or pma.prot != effective_prot(vma, pma) or precommit:
                self._try_map_pma_locked(vma, pma, precommit)

    def _try_map_pma_locked(self, vma: Vma, pma: Pma, precommit: bool = False) -> None:
        """Maps pma if the platform can; if not, it stays unmapped and the
        next access faults (the fault path reports the failure)."""
        with contextlib.suppress(SyscallError):
            self._map_pma_locked(vma, pma, precommit)

    def _remap_vma_pmas_locked(self, vma: Vma) -> None:
        """Brings the platform mappings of vma's pmas in line with its
        protection, after mprotect."""
        for pma in self.pmas.overlapping(vma.start, vma.end):
            if pma.mapped and pma.prot != effective_prot(vma, pma):
                self._try_map_pma_locked(vma, pma)

    def _eager_populate_locked(self, vma: Vma, start: int, end: int) -> None:
        """Backs and maps small ranges of memory at once (see EAGER_LIMIT):
        private anonymous memory, and shared memory-only files (shared
        anonymous memory, memfds), which need no dirty tracking."""
        if not accessible(vma.prot) or vma.noreserve or end - start > EAGER_LIMIT:
            return
        if vma.mappable is None:
            try:
                self._populate_locked(vma, start, end, False)
            except SyscallError:
                return  # MemoryFile exhausted: faults will retry
        elif (
            not vma.private
            and isinstance(vma.mappable, FileCache)
            and vma.mappable.memory_only
        ):
            try:
                end = self._populate_locked(
                    vma, start, end, bool(vma.prot & PROT_WRITE)
                )
            except SyscallError:
                return
        else:
            return
        if end > start:
            self._map_range_locked(vma, start, end)

    def _grow_stack_locked(self, addr: int, rl: Rlimits | None) -> Vma | None:
        """Extends a MAP_GROWSDOWN vma down to cover addr, if Linux would
        (mm/mmap.c expand_downwards); returns it, or None."""
        vma = self.vmas.first_at_or_after(addr)
        if vma is None or not vma.growsdown or vma.start <= addr:
            return None
        new_start = page_round_down(addr)
        prev = self.vmas.last_before(vma.start)
        if prev is not None and prev is not vma:
            if prev.end > new_start:
                return None
            if (
                not prev.growsdown
                and accessible(prev.prot)
                and new_start - prev.end < STACK_GUARD_GAP
            ):
                return None
        if new_start < self.min_address:
            return None
        grow = vma.start - new_start
        rl = rl or self.rlimits
        if rl is not None:
            stack_limit = rl.soft(L.RLIMIT_STACK)
            if stack_limit != RLIM_INFINITY and vma.end - new_start > stack_limit:
                return None
            try:
                self._check_expand_locked(rl, grow, False)
            except SyscallError:
                return None
            if vma.lock != LOCK_NONE:
                limit = rl.soft(L.RLIMIT_MEMLOCK)
                locked = self._vm_counts_locked()[3]
                if limit != RLIM_INFINITY and locked + grow > limit:
                    return None
        self.vmas.remove(vma)
        self.total_vm += grow
        vma.start = new_start
        if vma.mappable is not None:
            vma.offset -= grow
        self.vmas.insert(vma)
        if vma.mappable is not None:
            vma.mappable.add_mapping(
                self, new_start, new_start + grow, vma.offset, self._vma_writable(vma)
            )
        self._note_peak_locked()
        return vma

    # MappingSpace.

    def invalidate(self, start: int, end: int, even_private: bool) -> None:
        """Drops the pmas of [start, end) so the next access translates the
        mapped file again (called by Mappables; see mappable.py)."""
        with self.mu:
            self._remove_pmas_locked(start, end, keep_private=not even_private)

    # Lifetime.

    def fork(self) -> MMCore:
        """Returns a copy of this address space for a child process.

        Vmas are copied except MADV_DONTFORK ones; MADV_WIPEONFORK ones are
        copied without their pages. Shared pages stay shared; private pages
        are shared copy-on-write: both sides' pmas lose write permission (in
        the platform too), and the first write on either side copies the page
        if the other side still holds it. Memory locks are not inherited.
        """
        child = type(self)(self.platform, self.mf)
        with self.mu:
            for name in (
                "stack_top",
                "mmap_base",
                "brk_start",
                "brk",
                "start_stack",
                "start_code",
                "end_code",
                "start_data",
                "end_data",
                "arg_start",
                "arg_end",
                "env_start",
                "env_end",
                "vdso_start",
                "executable",
                "peak_vm",
                "membarrier_registered",
            ):
                setattr(child, name, getattr(self, name))
            child.auxv = list(self.auxv)
            protect: list[tuple[int, int, int]] = []
            for vma in self.vmas:
                if vma.dontfork:
                    continue
                nv = vma.copy()
                nv.lock = LOCK_NONE
                if nv.file is not None:
                    nv.file.inc_ref()
                child.vmas.insert(nv)
                child.total_vm += nv.end - nv.start
                if nv.mappable is not None:
                    nv.mappable.add_mapping(
                        child, nv.start, nv.end, nv.offset, self._vma_writable(nv)
                    )
                if vma.wipeonfork:
                    continue
                for pma in self.pmas.overlapping(vma.start, vma.end):
                    length = pma.end - pma.start
                    self.mf.inc_ref(pma.file_offset, length)
                    if vma.private and pma.writable:
                        pma.writable = False
                        if pma.mapped and pma.prot & PROT_WRITE:
                            prot = effective_prot(vma, pma)
                            pma.prot = prot
                            if (
                                protect
                                and protect[-1][1] == pma.start
                                and (protect[-1][2] == prot)
                            ):
                                protect[-1] = (protect[-1][0], pma.end, prot)
                            else:
                                protect.append((pma.start, pma.end, prot))
                    child.pmas.insert(
                        Pma(
                            pma.start,
                            pma.end,
                            pma.file_offset,
                            pma.private,
                            pma.writable,
                        )
                    )
            for lo, hi, prot in protect:
                try:
                    self.address_space.protect(lo, hi - lo, prot)
                except (NotImplementedError, OSError):
                    # A platform without protect, or a range the platform
                    # lost part of: map the pmas again.
                    for pma in self.pmas.overlapping(lo, hi):
                        vma = self.vmas.find(pma.start)
                        assert vma is not None
                        self._try_map_pma_locked(vma, pma)
        return child

    def release(self) -> None:
        """Unmaps everything and releases the platform address space."""
        with self.mu:
            for vma in self.vmas:
                self.vmas.remove(vma)
                if vma.mappable is not None:
                    vma.mappable.remove_mapping(
                        self, vma.start, vma.end, vma.offset, self._vma_writable(vma)
                    )
                if vma.file is not None:
                    self._deferred.append(vma.file)
            self.address_space.release()
            for pma in self.pmas:
                self.pmas.remove(pma)
                self.mf.dec_ref(pma.file_offset, pma.end - pma.start)
            self.total_vm = 0
            self.aio_contexts.clear()
        self._drop_deferred()
