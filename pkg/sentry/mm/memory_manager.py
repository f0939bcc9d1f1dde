"""MemoryManager: an application address space as the sentry sees it.

The MemoryManager owns the vmas (what the application mapped), the pmas (the
MemoryFile pages behind them) and the platform AddressSpace that makes those
pages visible to application code. It is shared by every task of a process
(and by CLONE_VM children).

Lock order: MemoryManager.mu, then MemoryFile locks, then platform locks.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from pkg.abi.linux import errno
from pkg.abi.linux.mman import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
    page_round_up,
)
from pkg.errors.syscall_error import SyscallError
from pkg.platform.platform import AddressSpace, Platform
from pkg.sentry.mm.io import MemoryIO
from pkg.sentry.mm.segments import SegmentList
from pkg.sentry.mm.vma import Pma, Vma
from pkg.sentry.pgalloc.memory_file import MemoryFile

log = logging.getLogger(__name__)

# Linux amd64 layout parameters (arch/x86/mm/mmap.c, fs/binfmt_elf.c).
_STACK_RND_PAGES = 1 << 22  # 16 GiB of stack top randomization
_MMAP_RND_PAGES = 1 << 28  # mmap_rnd_bits = 28
_BRK_RND = 1 << 25  # 32 MiB
_MIN_GAP = 128 << 20
_STACK_GUARD_GAP = 256 * PAGE_SIZE
DEFAULT_STACK_SIZE = 8 << 20


def _random_pages(n: int) -> int:
    """Returns a random multiple of PAGE_SIZE below n pages."""
    return (int.from_bytes(os.urandom(8), "little") % n) * PAGE_SIZE


@dataclass(slots=True)
class MmapOpts:
    """MmapOpts describes one mapping request, already validated."""

    length: int
    prot: int
    max_prot: int = PROT_READ | PROT_WRITE | PROT_EXEC
    addr: int = 0
    # MAP_FIXED: replace whatever is at addr.
    fixed: bool = False
    # MAP_FIXED_NOREPLACE: fail with EEXIST if addr is in use.
    noreplace: bool = False
    private: bool = True
    growsdown: bool = False
    name: str = ""


class MemoryManager(MemoryIO):
    """MemoryManager implements the mmap family over a platform AddressSpace.

    Attributes:
        mu: guards vmas, pmas, brk and the address space.
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
        self.stack_top = 0
        self.mmap_base = 0
        self.brk_start = 0
        self.brk = 0
        # Addresses of argv, envp and auxv for /proc/self/{cmdline,environ,auxv}.
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        self.auxv: list[tuple[int, int]] = []
        # Number of users (tasks) of this address space.
        self.users = 1

    def set_layout(self, stack_size: int = DEFAULT_STACK_SIZE) -> None:
        """Chooses randomized stack and mmap bases as Linux amd64 does."""
        self.stack_top = page_round_down(
            self.max_address - _random_pages(_STACK_RND_PAGES)
        )
        gap = min(max(stack_size, _MIN_GAP), self.max_address // 6 * 5)
        gap += _STACK_GUARD_GAP + _STACK_RND_PAGES * PAGE_SIZE
        self.mmap_base = page_round_down(
            self.max_address - gap - _random_pages(_MMAP_RND_PAGES)
        )

    def pie_base(self) -> int:
        """Returns where a PIE executable is loaded (ELF_ET_DYN_BASE)."""
        base = page_round_down(self.max_address // 3 * 2)
        return base + _random_pages(_MMAP_RND_PAGES) // 16

    def set_brk_start(self, end_of_image: int) -> None:
        """Places the heap after the executable, randomized."""
        self.brk_start = self.brk = page_round_up(end_of_image) + (
            _random_pages(_BRK_RND // PAGE_SIZE)
        )

    # Mapping.

    def mmap(self, opts: MmapOpts) -> int:
        """Creates an anonymous mapping and returns its address.

        Raises:
            SyscallError: ENOMEM if no room, EEXIST for MAP_FIXED_NOREPLACE.
        """
        length = page_round_up(opts.length)
        if length == 0 or length > self.max_address:
            raise SyscallError(errno.ENOMEM)
        with self.mu:
            addr = self._find_address_locked(opts.addr, length, opts)
            if opts.fixed:
                self._unmap_locked(addr, length)
            vma = Vma(
                start=addr,
                end=addr + length,
                prot=opts.prot,
                max_prot=opts.max_prot,
                private=opts.private,
                growsdown=opts.growsdown,
                name=opts.name,
            )
            self.vmas.insert(vma)
            self._populate_anonymous_locked(vma)
        return addr

    def _find_address_locked(self, hint: int, length: int, opts: MmapOpts) -> int:
        if opts.fixed or opts.noreplace:
            if hint % PAGE_SIZE or hint < self.min_address:
                raise SyscallError(
                    errno.EPERM if hint < self.min_address else errno.EINVAL
                )
            if hint + length > self.max_address:
                raise SyscallError(errno.ENOMEM)
            if opts.noreplace and self.vmas.overlapping(hint, hint + length):
                raise SyscallError(errno.EEXIST)
            return hint
        hint = page_round_down(hint)
        if (
            hint >= self.min_address
            and hint + length <= self.max_address
            and not self.vmas.overlapping(hint, hint + length)
        ):
            return hint
        # Top-down from mmap_base, then anything above it.
        for lo, hi in self.vmas.gaps_reversed(self.min_address, self.mmap_base):
            if hi - lo >= length:
                return hi - length
        for lo, hi in self.vmas.gaps_reversed(self.mmap_base, self.max_address):
            if hi - lo >= length:
                return hi - length
        raise SyscallError(errno.ENOMEM)

    def _populate_anonymous_locked(self, vma: Vma) -> None:
        # A fresh MemoryFile range costs nothing until touched, so back the
        # whole vma now and let the host populate it on first access.
        length = vma.end - vma.start
        try:
            offset = self.mf.allocate(length)
        except MemoryError as e:
            self.vmas.remove(vma)
            raise SyscallError(errno.ENOMEM) from e
        pma = Pma(vma.start, vma.end, offset, vma.prot)
        self.pmas.insert(pma)
        self.address_space.map_file(vma.start, length, offset, vma.prot)

    def munmap(self, addr: int, length: int) -> None:
        """Removes mappings in [addr, addr+length)."""
        if addr % PAGE_SIZE or length == 0:
            raise SyscallError(errno.EINVAL)
        length = page_round_up(length)
        if addr + length > self.max_address or addr + length < addr:
            raise SyscallError(errno.EINVAL)
        with self.mu:
            self._unmap_locked(addr, length)

    def _unmap_locked(self, addr: int, length: int) -> None:
        end = addr + length
        vmas = self.vmas.isolate(addr, end, Vma.split)
        if not vmas:
            return
        for vma in vmas:
            self.vmas.remove(vma)
        for pma in self.pmas.isolate(addr, end, Pma.split):
            self.pmas.remove(pma)
            self._release_pages_locked(pma)
        self.address_space.unmap(addr, length)

    def _release_pages_locked(self, pma: Pma) -> None:
        # TODO(#3): reference-count MemoryFile pages shared after fork.
        self.mf.free(pma.file_offset, pma.end - pma.start)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """Changes the protection of [addr, addr+length)."""
        if addr % PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        length = page_round_up(length)
        end = addr + length
        if end < addr:
            raise SyscallError(errno.ENOMEM)
        if length == 0:
            return
        with self.mu:
            # Every page of the range must be mapped (ENOMEM otherwise).
            cur = addr
            for vma in self.vmas.overlapping(addr, end):
                if vma.start > cur:
                    raise SyscallError(errno.ENOMEM)
                if prot & ~vma.max_prot:
                    raise SyscallError(errno.EACCES)
                cur = vma.end
            if cur < end:
                raise SyscallError(errno.ENOMEM)
            for vma in self.vmas.isolate(addr, end, Vma.split):
                vma.prot = prot
            for pma in self.pmas.isolate(addr, end, Pma.split):
                pma.prot = prot & ~PROT_WRITE if pma.cow else prot
                self.address_space.map_file(
                    pma.start, pma.end - pma.start, pma.file_offset, pma.prot
                )

    def set_brk(self, addr: int) -> int:
        """Moves the program break; returns the new (or unchanged) break."""
        with self.mu:
            if addr < self.brk_start:
                return self.brk
            old_end = page_round_up(self.brk)
            new_end = page_round_up(addr)
            if new_end > old_end:
                if new_end > self.max_address or self.vmas.overlapping(
                    old_end, new_end
                ):
                    return self.brk
                vma = Vma(
                    start=old_end,
                    end=new_end,
                    prot=PROT_READ | PROT_WRITE,
                    max_prot=PROT_READ | PROT_WRITE | PROT_EXEC,
                    private=True,
                    name="[heap]",
                )
                self.vmas.insert(vma)
                try:
                    self._populate_anonymous_locked(vma)
                except SyscallError:
                    return self.brk
            elif new_end < old_end:
                self._unmap_locked(new_end, old_end - new_end)
            self.brk = addr
            return addr

    # Faults.

    def handle_fault(self, addr: int, access: int) -> bool:
        """Resolves an application page fault at addr.

        Returns:
            True if the access is now possible and the application can retry;
            False if it must receive SIGSEGV.
        """
        with self.mu:
            vma = self.vmas.find(addr)
            if vma is None:
                return False
            if access & ~vma.prot:
                return False
            pma = self.pmas.find(addr)
            if pma is None:
                # TODO(#3): file-backed pages and stack growth.
                return False
            # The page is mapped with every permission the vma grants, so the
            # access was one the vma forbids (ptrace does not tell us which:
            # a write to a read-only page arrives looking like a read).
            # TODO(#3): copy-on-write pages fault here too.
            return False

    def vma_access_ok(self, addr: int, access: int) -> bool:
        """Reports whether addr is mapped with every bit of access."""
        with self.mu:
            vma = self.vmas.find(addr)
            return vma is not None and vma.prot & access == access

    # Lifetime.

    def release(self) -> None:
        """Frees every page and the platform address space."""
        with self.mu:
            for pma in self.pmas:
                self.pmas.remove(pma)
                self._release_pages_locked(pma)
            for vma in self.vmas:
                self.vmas.remove(vma)
            self.address_space.release()
