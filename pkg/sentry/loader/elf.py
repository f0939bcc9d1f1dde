"""Parsing of ELF64 executables for the loader.

Only what loading needs is decoded: the file header and the program headers.
Every check a malformed file could fail raises ENOEXEC (or ENOENT for an empty
PT_INTERP, as opening an empty path does), never a Python exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pkg.abi.linux import elf, errno
from pkg.errors.syscall_error import SyscallError

# Elf64_Ehdr after e_ident: type, machine, version, entry, phoff, shoff, flags,
# ehsize, phentsize, phnum, shentsize, shnum, shstrndx.
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
EHDR_SIZE = 64
PHDR_SIZE = _PHDR.size
# Linux refuses more program headers than fit in 64 KiB (ELF_MIN_ALIGN logic
# in load_elf_phdrs).
_MAX_PHDRS_BYTES = 65536
# PATH_MAX bounds PT_INTERP.
_MAX_INTERP = 4096


@dataclass(frozen=True, slots=True)
class ProgramHeader:
    """ProgramHeader is one Elf64_Phdr."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """ElfInfo is what the loader needs from an ELF file."""

    type: int
    entry: int
    phoff: int
    phnum: int
    phdrs: tuple[ProgramHeader, ...]
    interpreter: bytes | None
    # Raw program header table, for AT_PHDR when it is not in a PT_LOAD.
    phdr_bytes: bytes


class ExecFile:
    """ExecFile is the read interface the loader needs from a file."""

    def pread(self, length: int, offset: int) -> bytes:
        """Reads up to length bytes at offset."""
        raise NotImplementedError

    def size(self) -> int:
        """Returns the file size."""
        raise NotImplementedError

    def configure_mmap(self, opts: object) -> bool:
        """Makes opts (an mm MmapOpts) map this file, as mmap(2) of a
        descriptor would; returns False if the file cannot be mapped, and
        the loader then copies its contents instead."""
        return False

    def identity(self) -> tuple[int, int, str] | None:
        """Returns (device, inode, path) that /proc/pid/maps shows for the
        file's segments, or None for a file with no name."""
        return None


class BytesFile(ExecFile):
    """BytesFile serves an executable held in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def pread(self, length: int, offset: int) -> bytes:
        return self.data[offset : offset + length]

    def size(self) -> int:
        return len(self.data)


def parse(f: ExecFile) -> ElfInfo:
    """Parses the ELF header and program headers of f.

    Raises:
        SyscallError: ENOEXEC if f is not a loadable x86-64 ELF file.
    """
    hdr = f.pread(EHDR_SIZE, 0)
    if len(hdr) < EHDR_SIZE or hdr[:4] != elf.ELFMAG:
        raise SyscallError(errno.ENOEXEC)
    if (
        hdr[4] != elf.ELFCLASS64
        or hdr[5] != elf.ELFDATA2LSB
        or hdr[6] != elf.EV_CURRENT
    ):
        raise SyscallError(errno.ENOEXEC)
    if hdr[7] not in (elf.ELFOSABI_NONE, elf.ELFOSABI_LINUX):
        raise SyscallError(errno.ENOEXEC)
    (
        e_type,
        machine,
        _version,
        entry,
        phoff,
        _shoff,
        _flags,
        _ehsize,
        phentsize,
        phnum,
        _shentsize,
        _shnum,
        _shstrndx,
    ) = _EHDR.unpack_from(hdr, 16)
    if e_type not in (elf.ET_EXEC, elf.ET_DYN) or machine != elf.EM_X86_64:
        raise SyscallError(errno.ENOEXEC)
    if phentsize != PHDR_SIZE or phnum == 0 or phnum * PHDR_SIZE > _MAX_PHDRS_BYTES:
        raise SyscallError(errno.ENOEXEC)
    table = f.pread(phnum * PHDR_SIZE, phoff)
    if len(table) != phnum * PHDR_SIZE:
        raise SyscallError(errno.ENOEXEC)

    phdrs = []
    interp = None
    for i in range(phnum):
        p_type, p_flags, off, vaddr, _paddr, filesz, memsz, align = _PHDR.unpack_from(
            table, i * PHDR_SIZE
        )
        ph = ProgramHeader(p_type, p_flags, off, vaddr, filesz, memsz, align)
        if p_type == elf.PT_LOAD:
            if filesz > memsz or vaddr + memsz >= 1 << 63 or off + filesz > f.size():
                raise SyscallError(errno.ENOEXEC)
            if (vaddr - off) % 4096:
                raise SyscallError(errno.ENOEXEC)
        elif p_type == elf.PT_INTERP:
            if interp is not None:
                raise SyscallError(errno.ENOEXEC)
            if filesz < 2 or filesz > _MAX_INTERP:
                raise SyscallError(errno.ENOEXEC)
            raw = f.pread(filesz, off)
            if len(raw) != filesz or raw[-1] != 0:
                raise SyscallError(errno.ENOEXEC)
            interp = raw[: raw.index(0)]
            if not interp:
                # open_exec("") fails as any empty path does.
                raise SyscallError(errno.ENOENT)
        phdrs.append(ph)
    if not any(p.type == elf.PT_LOAD for p in phdrs):
        raise SyscallError(errno.ENOEXEC)
    return ElfInfo(e_type, entry, phoff, phnum, tuple(phdrs), interp, table)
