"""The mmap family: mmap, munmap, mprotect, mremap, brk, madvise, mincore,
msync and the mlock calls, as operations on an address space.

The system call handlers (pkg/sentry/syscalls/linux/sys_mmap.py and
friends) decode arguments and check what depends on the file and the
caller; everything about the address space is decided here, in the order
Linux checks it (mm/mmap.c, mm/mprotect.c, mm/mremap.c, mm/madvise.c,
mm/mincore.c, mm/msync.c, mm/mlock.c), so the errno of a call with several
problems is Linux's.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import mman as M
from pkg.abi.linux.mman import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
    page_round_up,
)
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.core import (
    RLIM_INFINITY,
    STACK_GUARD_GAP,
    MMCore,
    Rlimits,
    accessible,
)
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.mm.vma import (
    ADV_DONTDUMP,
    ADV_HUGEPAGE,
    ADV_MERGEABLE,
    ADV_NOHUGEPAGE,
    ADV_RAND,
    ADV_SEQ,
    LOCK_NONE,
    LOCK_ON,
    LOCK_ONFAULT,
    Vma,
)

if TYPE_CHECKING:
    from pkg.sentry.mm.mappable import Mappable, RefCounted
    from pkg.sentry.mm.mempolicy import MemPolicy

log = logging.getLogger(__name__)

_PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
# Where MAP_32BIT mappings go (arch/x86/kernel/sys_x86_64.c find_start_end).
MAP_32BIT_START = 0x40000000
MAP_32BIT_END = 0x80000000
# The device number /proc/[pid]/maps shows for shared anonymous memory.
_SHMEM_DEV = 1
_shmem_inos = itertools.count(1000)

_VALID_ADVICE = frozenset(
    (
        M.MADV_NORMAL,
        M.MADV_RANDOM,
        M.MADV_SEQUENTIAL,
        M.MADV_WILLNEED,
        M.MADV_DONTNEED,
        M.MADV_FREE,
        M.MADV_REMOVE,
        M.MADV_DONTFORK,
        M.MADV_DOFORK,
        M.MADV_MERGEABLE,
        M.MADV_UNMERGEABLE,
        M.MADV_HUGEPAGE,
        M.MADV_NOHUGEPAGE,
        M.MADV_DONTDUMP,
        M.MADV_DODUMP,
        M.MADV_WIPEONFORK,
        M.MADV_KEEPONFORK,
        M.MADV_COLD,
        M.MADV_PAGEOUT,
        M.MADV_POPULATE_READ,
        M.MADV_POPULATE_WRITE,
        M.MADV_DONTNEED_LOCKED,
        M.MADV_COLLAPSE,
        M.MADV_HWPOISON,
        M.MADV_SOFT_OFFLINE,
    )
)


@dataclass(slots=True)
class MmapOpts:
    """MmapOpts describes one mapping request, already validated."""

    length: int
    prot: int
    max_prot: int = _PROT_ALL
    addr: int = 0
    # MAP_FIXED: replace whatever is at addr.
    fixed: bool = False
    # MAP_FIXED_NOREPLACE: fail with EEXIST if addr is in use.
    noreplace: bool = False
    private: bool = True
    growsdown: bool = False
    name: str = ""
    # The file to map and the offset of the first page, or None for
    # anonymous memory.
    mappable: Mappable | None = None
    offset: int = 0
    # What keeps the file alive; the vma takes its own reference.
    file: RefCounted | None = None
    identity: MappingIdentity | None = None
    # MAP_POPULATE: prefault the whole mapping.
    populate: bool = False
    # MAP_NORESERVE.
    noreserve: bool = False
    # MAP_LOCKED.
    locked: bool = False
    # MAP_32BIT: place below 2 GiB.
    map32: bool = False


class MmapOps(MMCore):
    """MmapOps implements the mmap family of system calls."""

    # mmap(2) and munmap(2).

    def mmap(
        self, opts: MmapOpts, rl: Rlimits | None = None, cap_ipc_lock: bool = False
    ) -> int:
        """Creates a mapping and returns its address.

        Raises:
            SyscallError: ENOMEM if there is no room or a limit is reached,
                EEXIST for MAP_FIXED_NOREPLACE over a mapping, EPERM for a
                fixed address below the minimum, EAGAIN when a locked
                mapping passes RLIMIT_MEMLOCK.
        """
        length = page_round_up(opts.length)
        if length == 0 or length > self.max_address:
            raise SyscallError(errno.ENOMEM)
        rl = rl or self.rlimits
        lock = LOCK_ON if opts.locked else self.def_lock
        try:
            with self.mu:
                addr = self._mmap_address_locked(opts, length)
                freed = 0
                if opts.fixed:
                    freed = sum(
                        min(v.end, addr + length) - max(v.start, addr)
                        for v in self.vmas.overlapping(addr, addr + length)
                    )
                data = (
                    opts.private
                    and bool(opts.prot & PROT_WRITE)
                    and (not opts.growsdown)
                )
                # Private writable memory and shared anonymous memory are
                # committed; file pages are not.
                if opts.private:
                    account = bool(opts.prot & PROT_WRITE)
                else:
                    account = opts.mappable is None
                account = account and not opts.noreserve
                self._check_expand_locked(rl, length, data, freed, account)
                if lock != LOCK_NONE:
                    self._check_mlock_locked(rl, length, cap_ipc_lock, errno.EAGAIN)
                if opts.fixed:
                    self._unmap_locked(addr, addr + length)
                vma = self._new_vma(opts, addr, length)
                vma.lock = lock
                vma = self._insert_vma_locked(vma)
                self._note_peak_locked()
                if opts.populate or lock == LOCK_ON:
                    self._prefault_locked(addr, addr + length)
                else:
                    self._eager_populate_locked(vma, addr, addr + length)
        finally:
            self._drop_deferred()
        return addr

    def _new_vma(self, opts: MmapOpts, addr: int, length: int) -> Vma:
        mappable = opts.mappable
        file = opts.file
        identity = opts.identity
        if mappable is None and not opts.private:
            # Shared anonymous memory is a memory-only file, as shmem's
            # "/dev/zero (deleted)" is in Linux; the vma holds its one
            # reference.
            cache = FileCache(self.mf, None, size=length)
            mappable = cache
            file = cache
            identity = identity or MappingIdentity(
                _SHMEM_DEV, next(_shmem_inos), "/dev/zero (deleted)"
            )
        elif file is not None:
            file.inc_ref()
        return Vma(
            start=addr,
            end=addr + length,
            prot=opts.prot,
            max_prot=opts.max_prot,
            private=opts.private,
            growsdown=opts.growsdown,
            mappable=mappable,
            # A named anonymous copy (a loaded ELF segment) keeps its file
            # offset for /proc/pid/maps.
            offset=opts.offset
            if opts.mappable is not None or identity is not None
            else 0,
            file=file,
            identity=identity,
            name=opts.name,
            noreserve=opts.noreserve,
            accounted=opts.private
            and bool(opts.prot & PROT_WRITE)
            and not opts.noreserve,
        )

    def _mmap_address_locked(self, opts: MmapOpts, length: int) -> int:
        addr = opts.addr
        if opts.fixed or opts.noreplace:
            if addr % PAGE_SIZE:
                raise SyscallError(errno.EINVAL)
            if addr + length > self.max_address:
                raise SyscallError(errno.ENOMEM)
            if addr < self.min_address:
                raise SyscallError(errno.EPERM)
            if opts.noreplace and self.vmas.overlapping(addr, addr + length):
                raise SyscallError(errno.EEXIST)
            return addr
        if opts.map32:
            if addr and self._range_free_locked(page_round_up(addr), addr + length):
                addr = page_round_up(addr)
                if addr >= MAP_32BIT_START and addr + length <= MAP_32BIT_END:
                    return addr
            for lo, hi in self.gaps_locked(MAP_32BIT_START, MAP_32BIT_END):
                if hi - lo >= length:
                    return lo
            raise SyscallError(errno.ENOMEM)
        return self.find_free_locked(length, addr)

    def munmap(self, addr: int, length: int) -> None:
        """Removes the mappings in [addr, addr+length) (munmap(2)).

        Raises:
            SyscallError: EINVAL for an unaligned address, a zero length or a
                range outside the address space.
        """
        if addr % PAGE_SIZE or length == 0:
            raise SyscallError(errno.EINVAL)
        length = _align64(length)
        if length == 0 or addr > self.max_address or length > self.max_address - addr:
            raise SyscallError(errno.EINVAL)
        try:
            with self.mu:
                self._unmap_locked(addr, addr + length)
        finally:
            self._drop_deferred()

    # mprotect(2).

    def mprotect(
        self, addr: int, length: int, prot: int, growsdown: bool = False
    ) -> None:
        """Changes the protection of [addr, addr+length) (mprotect(2)).

        Args:
            addr: page-aligned start.
            length: length in bytes.
            prot: PROT_READ|PROT_WRITE|PROT_EXEC bits.
            growsdown: PROT_GROWSDOWN: extend the change down to the start of
                the MAP_GROWSDOWN vma holding addr.

        Raises:
            SyscallError: EINVAL (unaligned, PROT_GROWSDOWN on a normal vma),
                ENOMEM (part of the range unmapped; the vmas before the hole
                are changed), EACCES (prot exceeds what the file allows).
        """
        if addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        if length == 0:
            return
        length = _align64(length)
        end = addr + length
        if length == 0 or end <= addr:
            raise SyscallError(errno.ENOMEM)
        try:
            with self.mu:
                self._mprotect_locked(addr, end, prot, growsdown)
        finally:
            self._drop_deferred()

    def _mprotect_locked(
        self, start: int, end: int, prot: int, growsdown: bool
    ) -> None:
        vma = self.vmas.first_at_or_after(start)
        if vma is None:
            raise SyscallError(errno.ENOMEM)
        if growsdown:
            if vma.start >= end:
                raise SyscallError(errno.ENOMEM)
            start = vma.start
            if not vma.growsdown:
                raise SyscallError(errno.EINVAL)
        elif vma.start > start:
            raise SyscallError(errno.ENOMEM)
        cur = start
        try:
            while True:
                if prot & ~vma.max_prot & _PROT_ALL:
                    raise SyscallError(errno.EACCES)
                lo, hi = max(cur, vma.start), min(end, vma.end)
                if (
                    prot & PROT_WRITE
                    and not vma.prot & PROT_WRITE
                    and vma.private
                    and not vma.growsdown
                ):
                    self._check_expand_locked(
                        None, hi - lo, True, account=not vma.noreserve
                    )
                if vma.prot != prot:
                    for piece in self._isolate_locked(lo, hi):
                        piece.prot = prot
                        if prot & PROT_WRITE and piece.private and not piece.noreserve:
                            piece.accounted = True
                        self._remap_vma_pmas_locked(piece)
                        self._eager_populate_locked(piece, piece.start, piece.end)
                cur = hi
                if cur >= end:
                    return
                vma = self.vmas.find(cur)
                if vma is None:
                    raise SyscallError(errno.ENOMEM)
        finally:
            self._merge_range_locked(start, cur)

    # brk(2).

    def set_brk(self, addr: int, rl: Rlimits | None = None) -> int:
        """Moves the program break; returns the new (or unchanged) break,
        as brk(2) does (mm/mmap.c)."""
        rl = rl or self.rlimits
        try:
            with self.mu:
                return self._set_brk_locked(addr, rl)
        finally:
            self._drop_deferred()

    def _set_brk_locked(self, addr: int, rl: Rlimits | None) -> int:
        if addr < self.brk_start or addr > self.max_address:
            return self.brk
        if rl is not None:
            limit = rl.soft(L.RLIMIT_DATA)
            data = self.end_data - self.start_data
            if limit != RLIM_INFINITY and addr - self.brk_start + data > limit:
                return self.brk
        old_end = page_round_up(self.brk)
        new_end = page_round_up(addr)
        if new_end == old_end:
            self.brk = addr
            return addr
        if new_end < old_end:
            self._unmap_locked(new_end, old_end)
            self.brk = addr
            return addr
        nxt = self.vmas.first_at_or_after(old_end)
        if nxt is not None:
            gap_start = nxt.start - (STACK_GUARD_GAP if nxt.growsdown else 0)
            if new_end + PAGE_SIZE > gap_start:
                return self.brk
        try:
            self._check_expand_locked(rl, new_end - old_end, True, account=True)
            if self.def_lock != LOCK_NONE:
                self._check_mlock_locked(rl, new_end - old_end, False, errno.EAGAIN)
        except SyscallError:
            return self.brk
        vma = Vma(
            start=old_end,
            end=new_end,
            prot=PROT_READ | PROT_WRITE,
            max_prot=_PROT_ALL,
            private=True,
            lock=self.def_lock,
            accounted=True,
        )
        vma = self._insert_vma_locked(vma)
        self._note_peak_locked()
        try:
            if self.def_lock == LOCK_ON:
                self._prefault_locked(old_end, new_end)
            else:
                self._eager_populate_locked(vma, old_end, new_end)
        except SyscallError:
            pass
        self.brk = addr
        return addr

    # mremap(2).

    def mremap(
        self,
        old_addr: int,
        old_len: int,
        new_len: int,
        flags: int,
        new_addr: int = 0,
        rl: Rlimits | None = None,
    ) -> int:
        """Grows, shrinks or moves a mapping (mremap(2), mm/mremap.c).

        Returns:
            The mapping's new address.

        Raises:
            SyscallError: EINVAL, EFAULT (old range not one mapping), ENOMEM
                (no room and no MREMAP_MAYMOVE, or a limit), EAGAIN (mlock
                limit).
        """
        if flags & ~(M.MREMAP_MAYMOVE | M.MREMAP_FIXED | M.MREMAP_DONTUNMAP):
            raise SyscallError(errno.EINVAL)
        if flags & (M.MREMAP_FIXED | M.MREMAP_DONTUNMAP) and not (
            flags & M.MREMAP_MAYMOVE
        ):
            raise SyscallError(errno.EINVAL)
        if old_addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        old_len = _align64(old_len)
        new_len = _align64(new_len)
        if new_len == 0:
            raise SyscallError(errno.EINVAL)
        if flags & M.MREMAP_DONTUNMAP and old_len != new_len:
            raise SyscallError(errno.EINVAL)
        rl = rl or self.rlimits
        try:
            with self.mu:
                vma = self.vmas.find(old_addr)
                if vma is None:
                    raise SyscallError(errno.EFAULT)
                if flags & (M.MREMAP_FIXED | M.MREMAP_DONTUNMAP):
                    return self._mremap_to_locked(
                        old_addr, old_len, new_addr, new_len, flags, rl
                    )
                if old_len >= new_len:
                    if old_len > new_len:
                        self._unmap_locked(old_addr + new_len, old_addr + old_len)
                    return old_addr
                vma = self._vma_to_resize_locked(old_addr, old_len, new_len, flags, rl)
                if old_len == vma.end - old_addr and self._expandable_locked(
                    vma, new_len - old_len
                ):
                    return self._expand_locked(vma, new_len - old_len)
                if not flags & M.MREMAP_MAYMOVE:
                    raise SyscallError(errno.ENOMEM)
                dest = self.find_free_locked(new_len)
                return self._move_locked(vma, old_addr, old_len, dest, new_len, flags)
        finally:
            self._drop_deferred()

    def _mremap_to_locked(
        self,
        old_addr: int,
        old_len: int,
        new_addr: int,
        new_len: int,
        flags: int,
        rl: Rlimits | None,
    ) -> int:
        fixed = bool(flags & M.MREMAP_FIXED)
        if fixed:
            if new_addr % PAGE_SIZE:
                raise SyscallError(errno.EINVAL)
            if new_len > self.max_address or new_addr > self.max_address - new_len:
                raise SyscallError(errno.EINVAL)
            if old_addr + old_len > new_addr and new_addr + new_len > old_addr:
                raise SyscallError(errno.EINVAL)
            if new_addr < self.min_address:
                raise SyscallError(errno.EPERM)
            self._unmap_locked(new_addr, new_addr + new_len)
        if old_len > new_len:
            self._unmap_locked(old_addr + new_len, old_addr + old_len)
            old_len = new_len
        vma = self._vma_to_resize_locked(old_addr, old_len, new_len, flags, rl)
        if flags & M.MREMAP_DONTUNMAP:
            self._check_expand_locked(rl, old_len, self._is_data(vma))
        if not fixed:
            new_addr = self.find_free_locked(new_len, new_addr)
        return self._move_locked(vma, old_addr, old_len, new_addr, new_len, flags)

    @staticmethod
    def _is_data(vma: Vma) -> bool:
        return vma.private and bool(vma.prot & PROT_WRITE) and not vma.growsdown

    def _vma_to_resize_locked(
        self, addr: int, old_len: int, new_len: int, flags: int, rl: Rlimits | None
    ) -> Vma:
        vma = self.vmas.find(addr)
        if vma is None:
            raise SyscallError(errno.EFAULT)
        if old_len == 0 and vma.private:
            # Duplicating a private mapping would make an unrelated one.
            raise SyscallError(errno.EINVAL)
        if old_len > vma.end - addr:
            raise SyscallError(errno.EFAULT)
        if new_len == old_len:
            return vma
        grow = new_len - old_len
        if vma.lock != LOCK_NONE:
            self._check_mlock_locked(rl, grow, False, errno.EAGAIN)
        self._check_expand_locked(rl, grow, self._is_data(vma), account=vma.accounted)
        return vma

    def _expandable_locked(self, vma: Vma, delta: int) -> bool:
        end = vma.end + delta
        if end > self.max_address:
            return False
        return self._range_free_locked(vma.end, end)

    def _expand_locked(self, vma: Vma, delta: int) -> int:
        old_end = vma.end
        vma.end += delta
        self.total_vm += delta
        if vma.mappable is not None:
            vma.mappable.add_mapping(
                self,
                old_end,
                vma.end,
                vma.file_offset(old_end),
                self._vma_writable(vma),
            )
        self._note_peak_locked()
        if vma.lock == LOCK_ON:
            self._prefault_locked(old_end, vma.end)
        else:
            self._eager_populate_locked(vma, old_end, vma.end)
        self._merge_vma_locked(vma)
        return vma.start

    def _move_locked(
        self,
        vma: Vma,
        old_addr: int,
        old_len: int,
        new_addr: int,
        new_len: int,
        flags: int,
    ) -> int:
        """Moves [old_addr, old_addr+old_len) of vma to new_addr, growing it
        to new_len; pages move without being copied (move_vma)."""
        nv = vma.copy()
        nv.start = new_addr
        nv.end = new_addr + new_len
        nv.offset = vma.file_offset(old_addr)
        if nv.file is not None:
            nv.file.inc_ref()
        dontunmap = bool(flags & M.MREMAP_DONTUNMAP)
        delta = new_addr - old_addr
        mapped_old = False
        moved = []
        if old_len:
            old_end = old_addr + old_len
            self._isolate_locked(old_addr, old_end)
            for pma in self.pmas.overlapping(old_addr, old_end):
                self.pmas.remove(pma)
                mapped_old = mapped_old or pma.mapped
                pma.start += delta
                pma.end += delta
                moved.append(pma)
            if mapped_old:
                self._platform_unmap_locked(old_addr, old_addr + old_len)
            if dontunmap:
                # The old range stays mapped, empty, and unlocked.
                for old in self.vmas.overlapping(old_addr, old_end):
                    old.lock = LOCK_NONE
            else:
                self._unmap_locked(old_addr, old_end)
        nv = self._insert_vma_locked(nv)
        remap = [pma for pma in moved if pma.mapped]
        for pma in moved:
            pma.mapped = False
            self.pmas.insert(pma)
        for pma in remap:
            self._try_map_pma_locked(nv, pma)
        self._note_peak_locked()
        if new_len > old_len:
            if nv.lock == LOCK_ON:
                self._prefault_locked(new_addr + old_len, new_addr + new_len)
            else:
                self._eager_populate_locked(nv, new_addr + old_len, new_addr + new_len)
        return new_addr

    # madvise(2).

    def madvise(
        self, addr: int, length: int, advice: int, cap_sys_admin: bool = False
    ) -> None:
        """Applies advice to [addr, addr+length) (madvise(2), mm/madvise.c).

        Raises:
            SyscallError: EINVAL (bad advice or range, advice that does not
                apply to the mapping), ENOMEM (part of the range unmapped;
                the rest is still advised), EACCES (MADV_REMOVE of a mapping
                that cannot write the file), EFAULT (MADV_POPULATE_* past the
                end of a file), EPERM (MADV_HWPOISON without CAP_SYS_ADMIN).
        """
        if advice not in _VALID_ADVICE:
            raise SyscallError(errno.EINVAL)
        if advice in (M.MADV_HWPOISON, M.MADV_SOFT_OFFLINE):
            if not cap_sys_admin:
                raise SyscallError(errno.EPERM)
            # TODO(#3): memory-failure injection has no meaning here.
            raise SyscallError(errno.EINVAL)
        if addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        rounded = _align64(length)
        if length and rounded == 0:
            raise SyscallError(errno.EINVAL)
        end = addr + rounded
        if end < addr:
            raise SyscallError(errno.EINVAL)
        if end == addr:
            return
        if advice == M.MADV_COLLAPSE:
            # Unlike Linux, there are no transparent huge pages to collapse
            # into; Linux without THP rejects the advice the same way.
            raise SyscallError(errno.EINVAL)
        try:
            with self.mu:
                if advice in (M.MADV_POPULATE_READ, M.MADV_POPULATE_WRITE):
                    self._madvise_populate_locked(
                        addr, end, advice == M.MADV_POPULATE_WRITE
                    )
                    return
                unmapped = False
                cur = addr
                while cur < end:
                    vma = self.vmas.first_at_or_after(cur)
                    if vma is None or vma.start >= end:
                        unmapped = True
                        break
                    if vma.start > cur:
                        unmapped = True
                        cur = vma.start
                    hi = min(end, vma.end)
                    self._madvise_vma_locked(vma, cur, hi, advice)
                    cur = hi
                self._merge_range_locked(addr, end)
                if unmapped:
                    raise SyscallError(errno.ENOMEM)
        finally:
            self._drop_deferred()

    def _madvise_vma_locked(self, vma: Vma, start: int, end: int, advice: int) -> None:
        if advice in (M.MADV_DONTNEED, M.MADV_DONTNEED_LOCKED, M.MADV_FREE):
            if vma.lock != LOCK_NONE and advice != M.MADV_DONTNEED_LOCKED:
                raise SyscallError(errno.EINVAL)
            if advice == M.MADV_FREE and vma.mappable is not None:
                raise SyscallError(errno.EINVAL)
            # Private pages go (they read as zero, or as the file, next
            # time); shared pages stay in their file. MADV_FREE may drop
            # the pages at any time, so dropping them now is allowed.
            self._isolate_locked(start, end)
            self._remove_pmas_locked(start, end)
            self._eager_populate_locked(vma, start, end)
            return
        if advice == M.MADV_REMOVE:
            if vma.lock != LOCK_NONE:
                raise SyscallError(errno.EINVAL)
            if vma.mappable is None:
                raise SyscallError(errno.EINVAL)
            if vma.private or not vma.max_prot & PROT_WRITE:
                raise SyscallError(errno.EACCES)
            vma.mappable.punch_hole(vma.file_offset(start), end - start)
            return
        if advice == M.MADV_WILLNEED:
            if vma.mappable is not None:
                with contextlib.suppress(SyscallError):
                    vma.mappable.translate(
                        vma.file_offset(start),
                        vma.file_offset(end),
                        vma.file_offset(end),
                        False,
                    )
            return
        if advice in (M.MADV_COLD, M.MADV_PAGEOUT):
            if vma.lock != LOCK_NONE:
                raise SyscallError(errno.EINVAL)
            # Reclaim hints: pages here cannot be swapped out.
            return
        if advice == M.MADV_WIPEONFORK and vma.mappable is not None:
            raise SyscallError(errno.EINVAL)
        if advice == M.MADV_MERGEABLE and not vma.private:
            return
        for piece in self._isolate_locked(start, end):
            _apply_flag_advice(piece, advice)

    def _madvise_populate_locked(self, start: int, end: int, write: bool) -> None:
        cur = start
        while cur < end:
            vma = self.vmas.find(cur)
            if vma is None:
                raise SyscallError(errno.ENOMEM)
            if not accessible(vma.prot) or (write and not vma.prot & PROT_WRITE):
                raise SyscallError(errno.EINVAL)
            hi = min(end, vma.end)
            got = self._populate_locked(vma, cur, hi, write)
            self._map_range_locked(vma, cur, got, precommit=True)
            if got < hi:
                raise SyscallError(errno.EFAULT)
            cur = hi

    # mincore(2).

    def mincore(self, addr: int, length: int) -> bytes:
        """Returns one byte per page of [addr, addr+length), 1 if the page
        is resident (mincore(2)).

        Raises:
            SyscallError: EINVAL (unaligned), ENOMEM (outside the address
                space or not all mapped).
        """
        if addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        end = addr + _align64(length)
        if end > self.max_address or end < addr:
            raise SyscallError(errno.ENOMEM)
        out = bytearray()
        with self.mu:
            cur = addr
            while cur < end:
                vma = self.vmas.find(cur)
                if vma is None:
                    raise SyscallError(errno.ENOMEM)
                hi = min(end, vma.end)
                out += self._resident_locked(vma, cur, hi)
                cur = hi
        return bytes(out)

    def _resident_locked(self, vma: Vma, start: int, end: int) -> bytearray:
        out = bytearray((end - start) // PAGE_SIZE)
        for pma in self.pmas.overlapping(start, end):
            lo, hi = max(start, pma.start), min(end, pma.end)
            base = pma.file_offset - pma.start
            for dlo, dhi in self.mf.data_ranges(lo + base, hi - lo):
                first = (dlo - base - start) // PAGE_SIZE
                last = (dhi - base - start + PAGE_SIZE - 1) // PAGE_SIZE
                for i in range(first, last):
                    out[i] = 1
        if vma.mappable is not None:
            # Pages of the file in memory count even if not mapped here.
            for i in range(len(out)):
                if not out[i]:
                    page = start + i * PAGE_SIZE
                    out[i] = int(vma.mappable.resident(vma.file_offset(page)))
        return out

    # msync(2).

    def msync(self, addr: int, length: int, flags: int) -> None:
        """Writes back shared file mappings in [addr, addr+length)
        (msync(2), mm/msync.c).

        Raises:
            SyscallError: EINVAL (bad flags or address), ENOMEM (part of the
                range unmapped), EBUSY (MS_INVALIDATE of locked pages), and
                the file's write-back errors.
        """
        if flags & ~(M.MS_ASYNC | M.MS_INVALIDATE | M.MS_SYNC):
            raise SyscallError(errno.EINVAL)
        if addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        if flags & M.MS_ASYNC and flags & M.MS_SYNC:
            raise SyscallError(errno.EINVAL)
        end = addr + _align64(length)
        if end >= 1 << 64:
            raise SyscallError(errno.ENOMEM)
        if end == addr:
            return
        work: list[tuple[Mappable, int, int, RefCounted | None]] = []
        unmapped = False
        with self.mu:
            cur = addr
            while cur < end:
                vma = self.vmas.first_at_or_after(cur)
                if vma is None:
                    unmapped = True
                    break
                if vma.start > cur:
                    unmapped = True
                    cur = vma.start
                    if cur >= end:
                        break
                if flags & M.MS_INVALIDATE and vma.lock != LOCK_NONE:
                    raise SyscallError(errno.EBUSY)
                hi = min(end, vma.end)
                if vma.mappable is not None and not vma.private:
                    if vma.file is not None:
                        vma.file.inc_ref()
                    work.append(
                        (
                            vma.mappable,
                            vma.file_offset(cur),
                            vma.file_offset(hi),
                            vma.file,
                        )
                    )
                cur = hi
        # Write back without mu: it is I/O, and faults should not wait on it.
        try:
            for mappable, lo, hi, _ in work:
                mappable.writeback(lo, hi, bool(flags & M.MS_SYNC))
        finally:
            for _, _, _, file in work:
                if file is not None:
                    file.dec_ref()
        if unmapped:
            raise SyscallError(errno.ENOMEM)

    # mlock(2) family.

    def mlock(
        self,
        addr: int,
        length: int,
        onfault: bool = False,
        rl: Rlimits | None = None,
        cap_ipc_lock: bool = False,
    ) -> None:
        """Locks [addr, addr+length) in memory (mlock(2), mlock2(2)).

        Unlike Linux, locked pages are only populated and counted: the
        sentry's memory is never swapped.

        Raises:
            SyscallError: EPERM (RLIMIT_MEMLOCK is 0), ENOMEM (limit passed,
                or part of the range unmapped), EINVAL (range wraps).
        """
        rl = rl or self.rlimits
        start = page_round_down(addr)
        length = _align64(length + (addr - start))
        end = start + length
        try:
            with self.mu:
                if (
                    not cap_ipc_lock
                    and rl is not None
                    and (rl.soft(L.RLIMIT_MEMLOCK) == 0)
                ):
                    raise SyscallError(errno.EPERM)
                already = sum(
                    min(v.end, end) - max(v.start, start)
                    for v in self.vmas.overlapping(start, end)
                    if v.lock != LOCK_NONE
                )
                self._check_mlock_locked(
                    rl, length - already, cap_ipc_lock, errno.ENOMEM
                )
                self._set_lock_locked(start, end, LOCK_ONFAULT if onfault else LOCK_ON)
                if not onfault:
                    self._prefault_locked(start, end)
        finally:
            self._drop_deferred()

    def munlock(self, addr: int, length: int) -> None:
        """Unlocks [addr, addr+length) (munlock(2)).

        Raises:
            SyscallError: ENOMEM if part of the range is unmapped.
        """
        start = page_round_down(addr)
        end = start + _align64(length + (addr - start))
        try:
            with self.mu:
                self._set_lock_locked(start, end, LOCK_NONE)
        finally:
            self._drop_deferred()

    def mlockall(
        self, flags: int, rl: Rlimits | None = None, cap_ipc_lock: bool = False
    ) -> None:
        """Locks every current and/or future mapping (mlockall(2)).

        Raises:
            SyscallError: EINVAL (flags), EPERM (RLIMIT_MEMLOCK is 0), ENOMEM
                (MCL_CURRENT with more mapped than RLIMIT_MEMLOCK).
        """
        if (
            not flags
            or flags & ~(M.MCL_CURRENT | M.MCL_FUTURE | M.MCL_ONFAULT)
            or flags == M.MCL_ONFAULT
        ):
            raise SyscallError(errno.EINVAL)
        rl = rl or self.rlimits
        mode = LOCK_ONFAULT if flags & M.MCL_ONFAULT else LOCK_ON
        try:
            with self.mu:
                limit = RLIM_INFINITY if rl is None else rl.soft(L.RLIMIT_MEMLOCK)
                if limit == 0 and not cap_ipc_lock:
                    raise SyscallError(errno.EPERM)
                total = self._vm_counts_locked()[0]
                if (
                    flags & M.MCL_CURRENT
                    and not cap_ipc_lock
                    and limit != RLIM_INFINITY
                    and total > limit
                ):
                    raise SyscallError(errno.ENOMEM)
                self.def_lock = mode if flags & M.MCL_FUTURE else LOCK_NONE
                if flags & M.MCL_CURRENT:
                    for vma in self.vmas:
                        vma.lock = mode
                    self._merge_range_locked(0, self.max_address)
                    if mode == LOCK_ON:
                        for vma in self.vmas:
                            self._prefault_vma_locked(vma, vma.start, vma.end)
        finally:
            self._drop_deferred()

    def munlockall(self) -> None:
        """Unlocks every mapping and stops locking new ones (munlockall(2))."""
        try:
            with self.mu:
                self.def_lock = LOCK_NONE
                for vma in self.vmas:
                    vma.lock = LOCK_NONE
                self._merge_range_locked(0, self.max_address)
        finally:
            self._drop_deferred()

    def locked_bytes(self) -> int:
        """Returns the bytes of mlocked mappings (VmLck)."""
        with self.mu:
            return self._vm_counts_locked()[3]

    def _check_mlock_locked(
        self, rl: Rlimits | None, length: int, cap_ipc_lock: bool, err: int
    ) -> None:
        rl = rl or self.rlimits
        if cap_ipc_lock or rl is None:
            return
        limit = rl.soft(L.RLIMIT_MEMLOCK)
        if limit == RLIM_INFINITY:
            return
        if limit == 0 and err == errno.EAGAIN:
            raise SyscallError(errno.EPERM)
        if self._vm_counts_locked()[3] + length > limit:
            raise SyscallError(err)

    def _check_all_mapped_locked(self, start: int, end: int, err: int) -> None:
        """Raises SyscallError(err) unless vmas cover all of [start, end)."""
        cur = start
        for vma in self.vmas.overlapping(start, end):
            if vma.start > cur:
                raise SyscallError(err)
            cur = vma.end
        if cur < end:
            raise SyscallError(err)

    def _set_lock_locked(self, start: int, end: int, mode: int) -> None:
        if end < start:
            raise SyscallError(errno.EINVAL)
        if end == start:
            return
        # Every page must be mapped; Linux changes nothing otherwise.
        self._check_all_mapped_locked(start, end, errno.ENOMEM)
        for vma in self._isolate_locked(start, end):
            vma.lock = mode
        self._merge_range_locked(start, end)

    # NUMA policies of ranges (mbind(2)).

    def set_mempolicy_range(
        self, start: int, end: int, policy: MemPolicy | None
    ) -> None:
        """Gives [start, end) the policy (None: the task's), as mbind(2).

        Raises:
            SyscallError: EFAULT if part of the range is unmapped, leaving
                every vma as it was.
        """
        try:
            with self.mu:
                self._check_all_mapped_locked(start, end, errno.EFAULT)
                for vma in self._isolate_locked(start, end):
                    vma.mempolicy = policy
                self._merge_range_locked(start, end)
        finally:
            self._drop_deferred()

    def mempolicy_at(self, addr: int) -> MemPolicy | None:
        """Returns the policy mbind(2) gave the vma at addr, None if it has
        none.

        Raises:
            SyscallError: EFAULT if addr is not mapped.
        """
        with self.mu:
            vma = self.vmas.find(addr)
            if vma is None:
                raise SyscallError(errno.EFAULT)
            return vma.mempolicy

    # Prefaulting.

    def _prefault_locked(self, start: int, end: int) -> None:
        """Populates and maps [start, end) ahead of use (MAP_POPULATE,
        mlock), ignoring pages that cannot be populated."""
        for vma in self.vmas.overlapping(start, end):
            self._prefault_vma_locked(vma, max(start, vma.start), min(end, vma.end))

    def _prefault_vma_locked(self, vma: Vma, start: int, end: int) -> None:
        if not accessible(vma.prot):
            return
        # Private writable pages are populated for write, as Linux does,
        # so the copy-on-write happens now rather than on first store.
        write = vma.private and bool(vma.prot & PROT_WRITE)
        try:
            got = self._populate_locked(vma, start, end, write)
        except SyscallError:
            return
        if got > start:
            self._map_range_locked(vma, start, got, precommit=True)


def _align64(length: int) -> int:
    """Rounds a length up to whole pages with 64-bit wrap-around, as
    PAGE_ALIGN does: lengths within a page of 2**64 become 0."""
    return page_round_up(length) & ((1 << 64) - 1)


def _apply_flag_advice(vma: Vma, advice: int) -> None:
    """Records advice that only sets a vma flag."""
    if advice == M.MADV_NORMAL:
        vma.advice &= ~(ADV_SEQ | ADV_RAND)
    elif advice == M.MADV_RANDOM:
        vma.advice = (vma.advice & ~ADV_SEQ) | ADV_RAND
    elif advice == M.MADV_SEQUENTIAL:
        vma.advice = (vma.advice & ~ADV_RAND) | ADV_SEQ
    elif advice == M.MADV_DONTFORK:
        vma.dontfork = True
    elif advice == M.MADV_DOFORK:
        vma.dontfork = False
    elif advice == M.MADV_WIPEONFORK:
        vma.wipeonfork = True
    elif advice == M.MADV_KEEPONFORK:
        vma.wipeonfork = False
    elif advice == M.MADV_MERGEABLE:
        vma.advice |= ADV_MERGEABLE
    elif advice == M.MADV_UNMERGEABLE:
        vma.advice &= ~ADV_MERGEABLE
    elif advice == M.MADV_HUGEPAGE:
        vma.advice = (vma.advice & ~ADV_NOHUGEPAGE) | ADV_HUGEPAGE
    elif advice == M.MADV_NOHUGEPAGE:
        vma.advice = (vma.advice & ~ADV_HUGEPAGE) | ADV_NOHUGEPAGE
    elif advice == M.MADV_DONTDUMP:
        vma.advice |= ADV_DONTDUMP
    elif advice == M.MADV_DODUMP:
        vma.advice &= ~ADV_DONTDUMP
