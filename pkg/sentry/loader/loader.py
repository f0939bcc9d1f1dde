"""Loading an ELF executable into a fresh address space.

This mirrors fs/binfmt_elf.c: PT_LOAD segments become private mappings whose
pages hold the file's page-aligned contents, the bss is zeroed, the heap is
placed after the image, and the initial stack carries argc, argv, envp and the
auxiliary vector laid out as create_elf_tables lays it out.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pkg.abi.linux import elf, errno
from pkg.abi.linux.mman import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
    page_round_up,
)
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.loader.elf import PHDR_SIZE, ElfInfo, ExecFile, ProgramHeader, parse
from pkg.sentry.loader.vdso_mapping import VDSO
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.mm.memory_manager import DEFAULT_STACK_SIZE, MemoryManager, MmapOpts

# Linux caps argv+envp at a quarter of the stack limit (fs/exec.c); with the
# default 8 MiB stack that is 2 MiB. MAX_ARG_STRLEN bounds one string.
MAX_ARG_STRLEN = 32 * PAGE_SIZE
MAX_ARG_STRINGS = 0x7FFFFFFF
# How many #! interpreters may chain (fs/exec.c, binfmt recursion limit).
MAX_INTERPRETER_DEPTH = 4


def _prot(flags: int) -> int:
    prot = 0
    if flags & elf.PF_R:
        prot |= PROT_READ
    if flags & elf.PF_W:
        prot |= PROT_WRITE
    if flags & elf.PF_X:
        prot |= PROT_EXEC
    return prot


@dataclass(slots=True)
class LoadedImage:
    """LoadedImage describes one ELF file mapped into an address space."""

    entry: int
    # Added to every vaddr of the file (non-zero for ET_DYN).
    bias: int
    phdr_addr: int
    phnum: int
    end: int


@dataclass(slots=True)
class LoadArgs:
    """LoadArgs is everything execve hands the loader."""

    mm: MemoryManager
    file: ExecFile
    argv: list[bytes]
    envv: list[bytes]
    # The path execve was called with (AT_EXECFN).
    filename: bytes
    uid: int = 0
    euid: int = 0
    gid: int = 0
    egid: int = 0
    secure: bool = False
    # Host auxv values the application should see (AT_HWCAP, AT_HWCAP2,
    # AT_MINSIGSTKSZ, AT_PLATFORM string).
    host_auxv: dict[int, int] = field(default_factory=dict)
    platform_string: bytes = b"x86_64"
    # Opens the ELF interpreter named by PT_INTERP.
    open_interpreter: Callable[[bytes], ExecFile] | None = None
    stack_size: int = DEFAULT_STACK_SIZE
    # The vDSO to map (AT_SYSINFO_EHDR), or None for none.
    vdso: VDSO | None = None


@dataclass(slots=True)
class LoadResult:
    """LoadResult is where execution starts."""

    entry: int
    stack_pointer: int
    auxv: list[tuple[int, int]]


def map_image(
    mm: MemoryManager, f: ExecFile, info: ElfInfo, base_hint: int
) -> LoadedImage:
    """Maps the PT_LOAD segments of f and returns where they went.

    Args:
        mm: the destination address space.
        f: the ELF file.
        info: its parsed headers.
        base_hint: for ET_DYN, where to try to place the image.
    """
    loads = [p for p in info.phdrs if p.type == elf.PT_LOAD]
    lo = page_round_down(min(p.vaddr for p in loads))
    hi = page_round_up(max(p.vaddr + p.memsz for p in loads))
    if hi <= lo:
        raise SyscallError(errno.ENOEXEC)

    if info.type == elf.ET_DYN:
        # Reserve the whole span first so the segments stay together.
        base = mm.mmap(MmapOpts(length=hi - lo, prot=0, addr=base_hint))
        mm.munmap(base, hi - lo)
        bias = base - lo
    else:
        bias = 0

    ident = f.identity()
    for p in loads:
        start = page_round_down(p.vaddr + bias)
        file_start = p.vaddr + bias - start
        map_end = page_round_up(p.vaddr + bias + p.memsz)
        prot = _prot(p.flags)
        if _map_file_segment(mm, f, p, start, file_start, map_end, prot):
            continue
        # The segment is a copy in anonymous memory, named after the file
        # in /proc/pid/maps as Linux's file mapping would be.
        identity = None
        if ident is not None:
            identity = MappingIdentity(*ident)
        try:
            mm.mmap(
                MmapOpts(
                    length=map_end - start,
                    prot=prot,
                    addr=start,
                    fixed=True,
                    identity=identity,
                    offset=p.offset - file_start,
                )
            )
        except SyscallError as e:
            raise SyscallError(
                errno.ENOMEM if e.errno != errno.ENOMEM else e.errno
            ) from e
        # The page-aligned file range [offset - file_start, offset + filesz),
        # as a file mapping would show it; the rest of the pages stay zero.
        if p.filesz:
            data = f.pread(p.filesz + file_start, p.offset - file_start)
            if len(data) != p.filesz + file_start:
                raise SyscallError(errno.EIO)
            mm.copy_out_force(start, data)

    phdr_addr = 0
    for p in info.phdrs:
        if p.type == elf.PT_PHDR:
            phdr_addr = p.vaddr + bias
            break
    else:
        for p in loads:
            if p.offset <= info.phoff < p.offset + p.filesz:
                phdr_addr = p.vaddr + bias + (info.phoff - p.offset)
                break
    return LoadedImage(
        entry=info.entry + bias,
        bias=bias,
        phdr_addr=phdr_addr,
        phnum=info.phnum,
        end=hi + bias,
    )


def _map_file_segment(
    mm: MemoryManager,
    f: ExecFile,
    p: ProgramHeader,
    start: int,
    file_start: int,
    map_end: int,
    prot: int,
) -> bool:
    """Maps a read-only segment as a private mapping of the file itself, as
    binfmt_elf does, prefaulted; returns False if it must be copied instead.

    The pages are then the file cache's, shared by every process that runs
    the file, rather than a fresh copy per execve: for a 650 KiB text
    segment that copy was most of the loader's time (docs/performance.md).
    Writable segments are still copied: their pages would each take a
    copy-on-write fault on first store. So are segments whose file offset
    and address disagree modulo the page size, which a file mapping cannot
    express (Linux fails such an execve; the loader keeps accepting it), and
    segments whose bss reaches past the last file page.
    """
    file_offset = p.offset - file_start
    if (
        prot & PROT_WRITE
        or not p.filesz
        or file_offset < 0
        or file_offset % PAGE_SIZE
        or page_round_up(start + file_start + p.filesz) != map_end
    ):
        return False
    opts = MmapOpts(
        length=map_end - start,
        prot=prot,
        addr=start,
        fixed=True,
        offset=file_offset,
        populate=True,
    )
    if not f.configure_mmap(opts):
        return False
    try:
        mm.mmap(opts)
    except SyscallError as e:
        if e.errno == errno.ENOMEM:
            raise
        return False  # the copy below maps the range anew
    return True


def load(args: LoadArgs) -> LoadResult:
    """Loads an ELF executable and builds its initial stack.

    Raises:
        SyscallError: ENOEXEC for a bad file, E2BIG for oversized arguments,
            ENOMEM when the address space cannot hold the image.
    """
    mm = args.mm
    info = parse(args.file)
    mm.set_layout(args.stack_size)

    image = map_image(mm, args.file, info, mm.pie_base())
    mm.set_brk_start(image.end)
    _set_code_and_data(mm, info, image.bias)

    interp_base = 0
    entry = image.entry
    if info.interpreter is not None:
        if args.open_interpreter is None:
            raise SyscallError(errno.ENOEXEC)
        interp_file = args.open_interpreter(info.interpreter)
        interp_info = parse(interp_file)
        if interp_info.interpreter is not None or interp_info.type != elf.ET_DYN:
            raise SyscallError(errno.ELIBBAD)
        interp = map_image(mm, interp_file, interp_info, 0)
        interp_base = interp.bias
        entry = interp.entry

    # Below the interpreter, as Linux's arch_setup_additional_pages maps it
    # in the mmap area.
    vdso_base = args.vdso.map_into(mm) if args.vdso is not None else 0

    sp, auxv = _build_stack(args, image, interp_base, vdso_base)
    mm.auxv = auxv
    return LoadResult(entry=entry, stack_pointer=sp, auxv=auxv)


def _set_code_and_data(mm: MemoryManager, info: ElfInfo, bias: int) -> None:
    """Records the executable's code and data ranges for /proc/[pid]/stat,
    computed as fs/binfmt_elf.c does."""
    start_code, end_code, start_data, end_data = 1 << 64, 0, 0, 0
    for p in info.phdrs:
        if p.type != elf.PT_LOAD:
            continue
        if p.flags & elf.PF_X:
            start_code = min(start_code, p.vaddr)
            end_code = max(end_code, p.vaddr + p.filesz)
        start_data = max(start_data, p.vaddr)
        end_data = max(end_data, p.vaddr + p.filesz)
    if start_code == 1 << 64:
        start_code = 0
    mm.start_code, mm.end_code = start_code + bias, end_code + bias
    mm.start_data, mm.end_data = start_data + bias, end_data + bias


def _build_stack(
    args: LoadArgs, image: LoadedImage, interp_base: int, vdso_base: int = 0
) -> tuple[int, list[tuple[int, int]]]:
    mm = args.mm
    for s in args.argv + args.envv:
        if len(s) + 1 > MAX_ARG_STRLEN:
            raise SyscallError(errno.E2BIG)
    strings_size = sum(len(s) + 1 for s in args.argv + args.envv)
    if strings_size > args.stack_size // 4:
        raise SyscallError(errno.E2BIG)

    stack_size = page_round_up(args.stack_size)
    stack_bottom = mm.stack_top - stack_size
    mm.mmap(
        MmapOpts(
            length=stack_size,
            prot=PROT_READ | PROT_WRITE,
            addr=stack_bottom,
            fixed=True,
            growsdown=True,
            name="[stack]",
        )
    )

    # Strings at the top: the file name, then envp, then argv strings.
    blob = bytearray()
    top = mm.stack_top - 8  # Linux leaves a NULL word at the very top.
    execfn = args.filename + b"\0"
    p = top - len(execfn)
    execfn_addr = p
    env_addrs = []
    env_blob = b"".join(s + b"\0" for s in args.envv)
    p -= len(env_blob)
    env_start = p
    for s in args.envv:
        env_addrs.append(p)
        p += len(s) + 1
    arg_blob = b"".join(s + b"\0" for s in args.argv)
    p = env_start - len(arg_blob)
    arg_start = p
    arg_addrs = []
    for s in args.argv:
        arg_addrs.append(p)
        p += len(s) + 1
    blob = arg_blob + env_blob + execfn
    mm.copy_out(arg_start, blob)
    mm.arg_start, mm.arg_end = arg_start, env_start
    mm.env_start, mm.env_end = env_start, env_start + len(env_blob)

    p = arg_start
    platform = args.platform_string + b"\0"
    p -= len(platform)
    platform_addr = p
    mm.copy_out(platform_addr, platform)
    p -= 16
    random_addr = p & ~15
    mm.copy_out(random_addr, os.urandom(16))
    p = random_addr

    auxv = []
    if vdso_base:
        auxv.append((elf.AT_SYSINFO_EHDR, vdso_base))
    host = args.host_auxv
    if elf.AT_MINSIGSTKSZ in host:
        auxv.append((elf.AT_MINSIGSTKSZ, host[elf.AT_MINSIGSTKSZ]))
    auxv += [
        (elf.AT_HWCAP, host.get(elf.AT_HWCAP, 0)),
        (elf.AT_PAGESZ, PAGE_SIZE),
        (elf.AT_CLKTCK, 100),
        (elf.AT_PHDR, image.phdr_addr),
        (elf.AT_PHENT, PHDR_SIZE),
        (elf.AT_PHNUM, image.phnum),
        (elf.AT_BASE, interp_base),
        (elf.AT_FLAGS, 0),
        (elf.AT_ENTRY, image.entry),
        (elf.AT_UID, args.uid),
        (elf.AT_EUID, args.euid),
        (elf.AT_GID, args.gid),
        (elf.AT_EGID, args.egid),
        (elf.AT_SECURE, int(args.secure)),
        (elf.AT_RANDOM, random_addr),
        (elf.AT_HWCAP2, host.get(elf.AT_HWCAP2, 0)),
        (elf.AT_EXECFN, execfn_addr),
        (elf.AT_PLATFORM, platform_addr),
        (elf.AT_NULL, 0),
    ]

    # argc, argv[], NULL, envp[], NULL, auxv pairs; sp ends 16-byte aligned.
    words = 1 + len(arg_addrs) + 1 + len(env_addrs) + 1 + 2 * len(auxv)
    sp = (p - words * 8) & ~15
    vec = [len(args.argv), *arg_addrs, 0, *env_addrs, 0]
    for k, v in auxv:
        vec += [k, v]
    mm.copy_out(sp, struct.pack(f"<{len(vec)}Q", *vec))
    # What /proc/[pid]/maps and stat call the start of the stack.
    mm.start_stack = sp
    return sp, auxv
