"""The /proc/[pid]/maps, smaps and status views of an address space.

The text follows fs/proc/task_mmu.c byte for byte: the header line of each
vma is padded to 73 columns before the name, smaps values are right-aligned
in 8 columns, and VmFlags lists two-letter mnemonics in bit order with a
trailing space. Residency comes from the MemoryFile (pages the host has
populated behind each pma).
"""

from __future__ import annotations

from dataclasses import dataclass

from pkg.abi.linux.mman import PROT_EXEC, PROT_READ, PROT_WRITE
from pkg.sentry.mm.core import MMCore
from pkg.sentry.mm.vma import (
    ADV_DONTDUMP,
    ADV_HUGEPAGE,
    ADV_MERGEABLE,
    ADV_NOHUGEPAGE,
    ADV_RAND,
    ADV_SEQ,
    LOCK_NONE,
    LOCK_ONFAULT,
    Vma,
)

# Width of a maps line before the name (25 + 6 * sizeof(void *) - 1).
_NAME_COLUMN = 72


@dataclass(slots=True)
class _Usage:
    """Resident bytes of one vma, classified as smaps reports them."""

    rss: int = 0
    pss: float = 0.0
    shared_dirty: int = 0
    private_dirty: int = 0
    shared_clean: int = 0
    private_clean: int = 0
    anonymous: int = 0


class ProcfsOps(MMCore):
    """ProcfsOps renders the address space for procfs."""

    def maps_text(self) -> bytes:
        """Returns the contents of /proc/[pid]/maps."""
        with self.mu:
            # File names (memfd_create's too) may be any bytes.
            text = "".join(self._vma_header(v) for v in self.vmas)
            return text.encode(errors="surrogateescape")

    def smaps_text(self) -> bytes:
        """Returns the contents of /proc/[pid]/smaps."""
        out = []
        with self.mu:
            for vma in self.vmas:
                u = self._usage_locked(vma)
                size = vma.end - vma.start
                locked = u.rss if vma.lock != LOCK_NONE else 0
                out.append(self._vma_header(vma))
                rows = [
                    ("Size:", size),
                    ("KernelPageSize:", 4096),
                    ("MMUPageSize:", 4096),
                    ("Rss:", u.rss),
                    ("Pss:", int(u.pss)),
                    ("Pss_Dirty:", int(u.pss)),
                    ("Shared_Clean:", u.shared_clean),
                    ("Shared_Dirty:", u.shared_dirty),
                    ("Private_Clean:", u.private_clean),
                    ("Private_Dirty:", u.private_dirty),
                    ("Referenced:", u.rss),
                    ("Anonymous:", u.anonymous),
                    ("KSM:", 0),
                    ("LazyFree:", 0),
                    ("AnonHugePages:", 0),
                    ("ShmemPmdMapped:", 0),
                    ("FilePmdMapped:", 0),
                    ("Shared_Hugetlb:", 0),
                    ("Private_Hugetlb:", 0),
                    ("Swap:", 0),
                    ("SwapPss:", 0),
                    ("Locked:", locked),
                ]
                for label, value in rows:
                    out.append(f"{label:<16}{value >> 10:>8} kB\n")
                out.append("THPeligible:    0\n")
                out.append("VmFlags: " + "".join(m + " " for m in _vm_flags(vma)))
                out.append("\n")
        return "".join(out).encode(errors="surrogateescape")

    def vm_status(self) -> dict[str, int]:
        """Returns the Vm* and Rss* lines of /proc/[pid]/status, in kB."""
        with self.mu:
            total, data, stack, locked = self._vm_counts_locked()
            anon = file = shmem = 0
            exe = 0
            for vma in self.vmas:
                u = self._usage_locked(vma)
                if vma.mappable is None or (vma.private and u.anonymous):
                    anon += u.anonymous
                    file += u.rss - u.anonymous
                elif not vma.private:
                    shmem += u.rss
                else:
                    file += u.rss
                if vma.prot & PROT_EXEC and not vma.prot & PROT_WRITE:
                    exe += vma.end - vma.start
            rss = anon + file + shmem
            peak = max(self.peak_vm, total)
        return {
            "VmPeak": peak >> 10,
            "VmSize": total >> 10,
            "VmLck": locked >> 10,
            "VmPin": 0,
            "VmHWM": rss >> 10,
            "VmRSS": rss >> 10,
            "RssAnon": anon >> 10,
            "RssFile": file >> 10,
            "RssShmem": shmem >> 10,
            "VmData": data >> 10,
            "VmStk": stack >> 10,
            "VmExe": exe >> 10,
            "VmLib": 0,
            "VmPTE": 0,
            "VmSwap": 0,
        }

    def resident_bytes(self) -> int:
        """Returns the bytes of populated memory this address space maps."""
        with self.mu:
            return sum(self._usage_locked(v).rss for v in self.vmas)

    def _vma_header(self, vma: Vma) -> str:
        dev = ino = offset = 0
        name = ""
        if vma.identity is not None:
            dev, ino, name = vma.identity.dev, vma.identity.ino, vma.identity.path
            offset = vma.offset
        elif vma.name:
            name = vma.name
        elif vma.start < self.brk and vma.end > self.brk_start:
            name = "[heap]"
        elif vma.start <= self.start_stack <= vma.end:
            name = "[stack]"
        perms = (
            ("r" if vma.prot & PROT_READ else "-")
            + ("w" if vma.prot & PROT_WRITE else "-")
            + ("x" if vma.prot & PROT_EXEC else "-")
            + ("p" if vma.private else "s")
        )
        major = (dev >> 8) & 0xFFF
        minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
        line = (
            f"{vma.start:08x}-{vma.end:08x} {perms} {offset:08x} "
            f"{major:02x}:{minor:02x} {ino} "
        )
        if name:
            line = line.ljust(_NAME_COLUMN) + " " + name
        return line + "\n"

    def _usage_locked(self, vma: Vma) -> _Usage:
        u = _Usage()
        for pma in self.pmas.overlapping(vma.start, vma.end):
            length = pma.end - pma.start
            data = self.mf.data_ranges(pma.file_offset, length)
            if not data:
                continue
            for rstart, rend, refs in self.mf.refs(pma.file_offset, length):
                resident = sum(
                    min(e, rend) - max(s, rstart)
                    for s, e in data
                    if s < rend and e > rstart
                )
                if not resident:
                    continue
                u.rss += resident
                # A file page is also held by its cache: that is not a mapper.
                mappers = refs if pma.private else max(refs - 1, 1)
                u.pss += resident / mappers
                if pma.private:
                    u.anonymous += resident
                    if mappers > 1:
                        u.shared_dirty += resident
                    else:
                        u.private_dirty += resident
                elif mappers > 1:
                    u.shared_clean += resident
                else:
                    u.private_clean += resident
        return u


def _vm_flags(vma: Vma) -> list[str]:
    """Returns the VmFlags mnemonics of vma in Linux's bit order."""
    flags = []
    if vma.prot & PROT_READ:
        flags.append("rd")
    if vma.prot & PROT_WRITE:
        flags.append("wr")
    if vma.prot & PROT_EXEC:
        flags.append("ex")
    if not vma.private:
        flags.append("sh")
    if vma.max_prot & PROT_READ:
        flags.append("mr")
    if vma.max_prot & PROT_WRITE:
        flags.append("mw")
    if vma.max_prot & PROT_EXEC:
        flags.append("me")
    if not vma.private:
        flags.append("ms")
    if vma.growsdown:
        flags.append("gd")
    if vma.lock != LOCK_NONE:
        flags.append("lo")
    if vma.advice & ADV_SEQ:
        flags.append("sr")
    if vma.advice & ADV_RAND:
        flags.append("rr")
    if vma.dontfork:
        flags.append("dc")
    if vma.lock == LOCK_ONFAULT:
        flags.append("lf")
    if vma.private and vma.accounted:
        flags.append("ac")
    if vma.noreserve:
        flags.append("nr")
    if vma.wipeonfork:
        flags.append("wf")
    if vma.advice & ADV_DONTDUMP:
        flags.append("dd")
    if vma.advice & ADV_HUGEPAGE:
        flags.append("hg")
    if vma.advice & ADV_NOHUGEPAGE:
        flags.append("nh")
    if vma.advice & ADV_MERGEABLE:
        flags.append("mg")
    return flags
