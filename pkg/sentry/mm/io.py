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
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux.mman import PROT_READ, PROT_WRITE
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.mm.segments import SegmentList
    from pkg.sentry.mm.vma import Pma, Vma
    from pkg.sentry.pgalloc.memory_file import MemoryFile

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")

# Strings are read a chunk at a time so a short string near the end of a
# mapping does not fault on bytes past its terminator.
_STRING_CHUNK = 256


class MemoryIO:
    """MemoryIO is the copy-in/copy-out half of MemoryManager."""

    mu: threading.Lock
    mf: MemoryFile
    vmas: SegmentList[Vma]
    pmas: SegmentList[Pma]
    max_address: int

    def _ranges_locked(
        self, addr: int, length: int, access: int, force: bool = False
    ) -> tuple[list[tuple[int, int]], int]:
        """Translates an address range to MemoryFile ranges.

        Copy-on-write pages are copied first when access includes PROT_WRITE;
        force skips the vma permission check (FOLL_FORCE).

        Returns:
            ([(file_offset, length), ...], n): the ranges covering the first n
            bytes, where n < length if the range stops being accessible.
        """
        out: list[tuple[int, int]] = []
        end = addr + length
        if addr >= self.max_address or end < addr:
            return out, 0
        end = min(end, self.max_address)
        cur = addr
        while cur < end:
            pma = self.pmas.find(cur)
            if pma is None or (pma.cow and access & PROT_WRITE):
                if not self._fault_in_locked(cur, access):
                    break
                pma = self.pmas.find(cur)
                if pma is None:
                    break
            vma = self.vmas.find(cur)
            if vma is None or (vma.prot & access != access and not force):
                break
            stop = min(end, pma.end, vma.end)
            out.append((pma.file_offset + (cur - pma.start), stop - cur))
            cur = stop
        return out, cur - addr

    def _fault_in_locked(self, addr: int, access: int) -> bool:
        """Makes the page at addr backed for access; overridden by the
        MemoryManager for file-backed and copy-on-write pages."""
        return False

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

    def copy_in_partial(self, addr: int, length: int) -> bytes:
        """Returns the readable prefix of [addr, addr+length)."""
        view = self.mf.view
        with self.mu:
            ranges, _ = self._ranges_locked(addr, length, PROT_READ)
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
            pos = 0
            for off, m in ranges:
                view[off : off + m] = data[pos : pos + m]
                pos += m

    def copy_out_partial(self, addr: int, data: bytes | bytearray | memoryview) -> int:
        """Writes as much of data as is writable; returns the bytes written."""
        view = self.mf.view
        with self.mu:
            ranges, n = self._ranges_locked(addr, len(data), PROT_WRITE)
            pos = 0
            for off, m in ranges:
                view[off : off + m] = data[pos : pos + m]
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
            pos = 0
            for off, m in ranges:
                view[off : off + m] = data[pos : pos + m]
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
