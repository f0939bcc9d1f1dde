"""Copy-in and copy-out of application memory.

The sentry never touches application memory through the platform: it finds
the MemoryFile pages behind an address range (the pmas) and copies through its
own mapping of the MemoryFile. A bad or unmapped address is found during the
walk and becomes EFAULT; nothing can fault inside the sentry.

Permissions follow the page tables, as copy_{from,to}_user do: reads need
PROT_READ and writes PROT_WRITE on the vma.
"""

from __future__ import annotations

import struct

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux.mman import PROT_READ, PROT_WRITE, page_round_down, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.core import MMCore, accessible
from pkg.sentry.mm.vma import Vma

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")

# Strings are read a chunk at a time so a short string near the end of a
# mapping does not fault on bytes past its terminator.
_STRING_CHUNK = 256


class MemoryIO(MMCore):
    """MemoryIO is the copy-in/copy-out half of MemoryManager."""

    def _ranges_locked(
        self, addr: int, length: int, access: int, force: bool = False
    ) -> tuple[list[tuple[int, int]], int]:
        """Translates an address range to MemoryFile ranges.

        Pages without pmas are populated, copy-on-write pages are copied
        first when access includes PROT_WRITE, and a MAP_GROWSDOWN stack
        grows as a fault there would grow it. force skips the vma permission
        check (FOLL_FORCE).

        Returns:
            ([(file_offset, length), ...], n): the ranges covering the first n
            bytes, where n < length if the range stops being accessible.
        """
        out: list[tuple[int, int]] = []
        end = addr + length
        if addr >= self.max_address or end < addr:
            return out, 0
        end = min(end, self.max_address)
        write = bool(access & PROT_WRITE)
        cur = addr
        pmas = self.pmas
        while cur < end:
            pma = pmas.find(cur)
            if pma is not None and (pma.writable or not write):
                # Fast path: already backed. Check the vma's permission.
                vma = self.vmas.find(cur)
                assert vma is not None
                if not _allowed(vma, write, force):
                    break
                stop = min(end, pma.end)
                out.append((pma.file_offset + (cur - pma.start), stop - cur))
                cur = stop
                continue
            vma = self.vmas.find(cur)
            if vma is None:
                vma = self._grow_stack_locked(cur, None)
                if vma is None:
                    break
            if not _allowed(vma, write, force):
                break
            stop = min(end, vma.end)
            try:
                got = self._populate_locked(
                    vma, page_round_down(cur), page_round_up(stop), write
                )
            except SyscallError:
                break
            if got <= cur:
                break
            stop = min(stop, got)
            while cur < stop:
                pma = pmas.find(cur)
                assert pma is not None
                piece = min(stop, pma.end)
                out.append((pma.file_offset + (cur - pma.start), piece - cur))
                cur = piece
        return out, cur - addr

    def accessible_length(self, addr: int, length: int, access: int) -> int:
        """Returns how much of [addr, addr+length), from addr on, lies in
        vmas that allow access, without populating or growing anything. A
        gap that a MAP_GROWSDOWN stack above it may grow into counts.

        This bounds the memory a transfer needs before it is made: what
        cannot be copied is never read.
        """
        end = addr + length
        if addr >= self.max_address or end < addr:
            return 0
        end = min(end, self.max_address)
        write = bool(access & PROT_WRITE)
        cur = addr
        with self.mu:
            while cur < end:
                vma = self.vmas.find(cur)
                if vma is None:
                    # Only as far as RLIMIT_STACK lets the stack grow.
                    above = self.vmas.first_at_or_after(cur)
                    if above is None or not above.growsdown:
                        break
                    rl = self.rlimits
                    limit = rl.soft(L.RLIMIT_STACK) if rl is not None else 0
                    if limit != L.RLIM_INFINITY and above.end - cur > limit:
                        break
                    cur = min(end, above.start)
                    continue
                if not _allowed(vma, write, False):
                    break
                cur = min(end, vma.end)
        return cur - addr

    def copy_in(self, addr: int, length: int) -> bytes:
        """Returns length bytes of application memory at addr.

        Raises:
            SyscallError: EFAULT if any byte is not readable.
        """
        if length == 0:
            return b""
        view = self.mf.view
        with self.mu:
            ranges, n = self._ranges_locked(addr, length, PROT_READ)
            if n != length:
                raise SyscallError(errno.EFAULT)
            if len(ranges) == 1:
                off = ranges[0][0]
                return bytes(view[off : off + length])
            return b"".join(bytes(view[off : off + m]) for off, m in ranges)

    def copy_in_partial(self, addr: int, length: int, force: bool = False) -> bytes:
        """Returns the readable prefix of [addr, addr+length); force reads
        whatever the protection allows the kernel to (FOLL_FORCE)."""
        view = self.mf.view
        with self.mu:
            ranges, _ = self._ranges_locked(addr, length, PROT_READ, force)
            return b"".join(bytes(view[off : off + m]) for off, m in ranges)

    def copy_out(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Writes data to application memory at addr.

        Raises:
            SyscallError: EFAULT if any byte is not writable; nothing is
                written then.
        """
        length = len(data)
        if length == 0:
            return
        view = self.mf.view
        with self.mu:
            ranges, n = self._ranges_locked(addr, length, PROT_WRITE)
            if n != length:
                raise SyscallError(errno.EFAULT)
            # Slices of a memoryview are not copies, unlike those of bytes.
            src = memoryview(data)
            pos = 0
            for off, m in ranges:
                view[off : off + m] = src[pos : pos + m]
                pos += m

    def copy_out_partial(
        self, addr: int, data: bytes | bytearray | memoryview, force: bool = False
    ) -> int:
        """Writes as much of data as is writable; returns the bytes written.
        force writes through the protection into private mappings
        (FOLL_FORCE), copying shared pages first."""
        view = self.mf.view
        with self.mu:
            ranges, n = self._ranges_locked(addr, len(data), PROT_WRITE, force)
            # Slices of a memoryview are not copies, unlike those of bytes.
            src = memoryview(data)
            pos = 0
            for off, m in ranges:
                view[off : off + m] = src[pos : pos + m]
                pos += m
            return n

    def copy_out_force(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Writes data at addr whatever the vma's protection, as the kernel
        does for FOLL_FORCE (the ELF loader, ptrace and /proc/pid/mem).

        Raises:
            SyscallError: EFAULT if part of the range is unmapped.
        """
        view = self.mf.view
        with self.mu:
            ranges, n = self._ranges_locked(addr, len(data), PROT_WRITE, force=True)
            if n != len(data):
                raise SyscallError(errno.EFAULT)
            # Slices of a memoryview are not copies, unlike those of bytes.
            src = memoryview(data)
            pos = 0
            for off, m in ranges:
                view[off : off + m] = src[pos : pos + m]
                pos += m

    def zero_out(self, addr: int, length: int) -> None:
        """Writes length zero bytes at addr."""
        self.copy_out(addr, bytes(length))

    def copy_in_string(self, addr: int, max_length: int) -> bytes:
        """Reads a NUL-terminated string of at most max_length bytes.

        Returns:
            The string without its terminator.

        Raises:
            SyscallError: EFAULT for a bad address, ENAMETOOLONG if no NUL
                appears within max_length bytes.
        """
        parts = []
        total = 0
        while total < max_length:
            want = min(
                _STRING_CHUNK - (addr + total) % _STRING_CHUNK, max_length - total
            )
            chunk = self.copy_in_partial(addr + total, want)
            nul = chunk.find(b"\0")
            if nul >= 0:
                parts.append(chunk[:nul])
                return b"".join(parts)
            if len(chunk) < want:
                raise SyscallError(errno.EFAULT)
            parts.append(chunk)
            total += want
        raise SyscallError(errno.ENAMETOOLONG)

    def read_u32(self, addr: int) -> int:
        """Reads a little-endian u32."""
        return _U32.unpack(self.copy_in(addr, 4))[0]

    def read_i32(self, addr: int) -> int:
        """Reads a little-endian s32."""
        return _I32.unpack(self.copy_in(addr, 4))[0]

    def read_u64(self, addr: int) -> int:
        """Reads a little-endian u64."""
        return _U64.unpack(self.copy_in(addr, 8))[0]

    def write_u32(self, addr: int, value: int) -> None:
        """Writes a little-endian u32."""
        self.copy_out(addr, _U32.pack(value & 0xFFFFFFFF))

    def write_i32(self, addr: int, value: int) -> None:
        """Writes a little-endian s32."""
        self.copy_out(addr, _I32.pack(value))

    def write_u64(self, addr: int, value: int) -> None:
        """Writes a little-endian u64."""
        self.copy_out(addr, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def write_i64(self, addr: int, value: int) -> None:
        """Writes a little-endian s64."""
        self.copy_out(addr, _I64.pack(value))


def _allowed(vma: Vma, write: bool, force: bool) -> bool:
    """Reports whether the kernel may access vma (check_vma_flags): on x86
    every accessible page is readable and writes need PROT_WRITE; FOLL_FORCE
    overrides the protection where the file allows it, writing only to
    private (copy-on-write) mappings."""
    if force:
        if write:
            return vma.private and bool(vma.max_prot & PROT_WRITE)
        return bool(vma.max_prot & PROT_READ)
    return bool(vma.prot & PROT_WRITE) if write else accessible(vma.prot)
