"""Tests that malformed executables are refused with the errno Linux gives."""

import struct

import pytest

from pkg.abi.linux import elf, errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.loader.elf import BytesFile, parse

BUSYBOX = "/bin/busybox"


def _header(
    e_type: int = elf.ET_EXEC, machine: int = elf.EM_X86_64, phnum: int = 1
) -> bytearray:
    h = bytearray(64)
    h[0:4] = elf.ELFMAG
    h[4] = elf.ELFCLASS64
    h[5] = elf.ELFDATA2LSB
    h[6] = elf.EV_CURRENT
    struct.pack_into("<HHIQQQIHHHHHH", h, 16, e_type, machine, 1, 0x401000, 64, 0, 0,
                     64, 56, phnum, 64, 0, 0)  # fmt: skip
    return h


def _phdr(p_type: int, offset: int, vaddr: int, filesz: int, memsz: int) -> bytes:
    return struct.pack(
        "<IIQQQQQQ", p_type, 5, offset, vaddr, vaddr, filesz, memsz, 4096
    )


def _errno(data: bytes) -> int:
    with pytest.raises(SyscallError) as e:
        parse(BytesFile(bytes(data)))
    return e.value.errno


def test_busybox_parses() -> None:
    with open(BUSYBOX, "rb") as f:
        info = parse(BytesFile(f.read()))
    assert info.type == elf.ET_EXEC
    assert info.interpreter is None
    assert any(p.type == elf.PT_LOAD for p in info.phdrs)


def test_garbage_and_truncated_files_are_enoexec() -> None:
    assert _errno(b"") == errno.ENOEXEC
    assert _errno(b"#!/bin/sh\n") == errno.ENOEXEC
    assert _errno(b"\x7fELF") == errno.ENOEXEC
    assert _errno(_header()) == errno.ENOEXEC  # no program headers present


def test_wrong_machine_class_and_type_are_enoexec() -> None:
    load = _phdr(elf.PT_LOAD, 0, 0x400000, 120, 120)
    assert _errno(_header(machine=3) + load) == errno.ENOEXEC
    assert _errno(_header(e_type=1) + load) == errno.ENOEXEC
    h = _header()
    h[4] = 1  # ELFCLASS32
    assert _errno(h + load) == errno.ENOEXEC


def test_segment_past_end_of_file_is_enoexec() -> None:
    assert _errno(_header() + _phdr(elf.PT_LOAD, 0, 0x400000, 1 << 20, 1 << 20)) == (
        errno.ENOEXEC
    )


def test_filesz_above_memsz_is_enoexec() -> None:
    assert _errno(_header() + _phdr(elf.PT_LOAD, 0, 0x400000, 120, 60)) == errno.ENOEXEC


def _with_interp(content: bytes) -> bytes:
    h = _header(phnum=2)
    off = 64 + 2 * 56
    return bytes(
        h
        + _phdr(elf.PT_LOAD, 0, 0x400000, off + len(content), off + len(content))
        + _phdr(elf.PT_INTERP, off, 0, len(content), len(content))
        + content
    )


def test_interpreter_checks_follow_binfmt_elf() -> None:
    # Shorter than two bytes, or not NUL-terminated: ENOEXEC.
    assert _errno(_with_interp(b"\0")) == errno.ENOEXEC
    assert _errno(_with_interp(b"/lib/ld.so")) == errno.ENOEXEC
    # An empty name is an empty path: ENOENT.
    assert _errno(_with_interp(b"\0\0")) == errno.ENOENT
    info = parse(BytesFile(_with_interp(b"/lib/ld.so\0")))
    assert info.interpreter == b"/lib/ld.so"
