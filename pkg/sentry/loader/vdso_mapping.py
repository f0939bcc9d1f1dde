"""The vDSO: a small shared object mapped into every process at execve.

The image (pkg/sentry/loader/vdso/vdso.c) answers clock_gettime,
gettimeofday, time and getcpu in the application's address space from a
parameter page, "[vvar]", mapped read-only just below it and kept up to date
by the sentry (pkg/sentry/time/vdso_clock.py). Both live in the MemoryFile:
one copy of each for the whole sandbox. Every process maps the vvar page
shared, so the sentry's updates reach it at once, and the image private, so
that a debugger's breakpoint in it stays in one process, as Linux maps its
vDSO.

AT_SYSINFO_EHDR tells libc where the image is; without it (no image, or
--vdso=false) libc makes the system calls.
"""

from __future__ import annotations

import logging
import os

from pkg.abi.linux import elf, errno
from pkg.abi.linux.mman import PAGE_SIZE, PROT_EXEC, PROT_READ, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.loader.elf import BytesFile, parse
from pkg.sentry.mm.mappable import MappingSpace, Translation
from pkg.sentry.mm.memory_manager import MemoryManager, MmapOpts
from pkg.sentry.pgalloc.memory_file import MemoryFile

log = logging.getLogger(__name__)

# The built image, beside this module in the source and runfiles trees.
IMAGE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vdso", "vdso.so")


def _read_image() -> bytes | None:
    # Read at import, which happens before the sandbox gives up the host's
    # file system (runsc/boot/boot.py).
    try:
        with open(IMAGE_PATH, "rb") as f:
            return f.read()
    except OSError as e:
        log.warning(
            "vdso: no image at %s (%s): libc will make system calls", IMAGE_PATH, e
        )
        return None


IMAGE = _read_image()

# The vvar page comes first, then the image.
VVAR_SIZE = PAGE_SIZE


def check_image(image: bytes) -> None:
    """Checks that image can be mapped as it is: a shared object linked at
    0 whose loadable segments lie at their file offsets.

    Raises:
        ValueError: it cannot.
    """
    info = parse(BytesFile(image))
    if info.type != elf.ET_DYN or info.interpreter is not None:
        raise ValueError("vdso: not a shared object")
    for p in info.phdrs:
        if p.type == elf.PT_LOAD and (p.vaddr != p.offset or p.filesz != p.memsz):
            raise ValueError("vdso: a segment is not at its file offset")


class VDSO:
    """VDSO owns the vvar page and the image's pages in the MemoryFile and
    maps them into address spaces. It is the Mappable behind both mappings:
    file offset 0 is the vvar page, VVAR_SIZE the image.

    The pages live as long as the kernel; vmas hold no reference on them.
    """

    def __init__(self, mf: MemoryFile, image: bytes) -> None:
        check_image(image)
        self.mf = mf
        self.image_size = page_round_up(len(image))
        self.size = VVAR_SIZE + self.image_size
        self.offset = mf.allocate(self.size)
        mf.write(self.offset + VVAR_SIZE, image)

    @property
    def vvar_offset(self) -> int:
        """The MemoryFile offset of the vvar page."""
        return self.offset

    def map_into(self, mm: MemoryManager) -> int:
        """Maps the vvar page and the image into mm, below the mmap base as
        any mapping would go; returns the image's address (AT_SYSINFO_EHDR).

        Raises:
            SyscallError: ENOMEM if mm has no room.
        """
        # Reserve both together so the image sits right above its page.
        base = mm.mmap(MmapOpts(length=self.size, prot=0))
        mm.mmap(
            MmapOpts(
                length=VVAR_SIZE,
                prot=PROT_READ,
                max_prot=PROT_READ,
                addr=base,
                fixed=True,
                private=False,
                name="[vvar]",
                mappable=self,
                offset=0,
            )
        )
        mm.mmap(
            MmapOpts(
                length=self.image_size,
                prot=PROT_READ | PROT_EXEC,
                addr=base + VVAR_SIZE,
                fixed=True,
                name="[vdso]",
                mappable=self,
                offset=VVAR_SIZE,
            )
        )
        return base + VVAR_SIZE

    # Mappable.

    def translate(
        self, start: int, end: int, optional_end: int, write: bool
    ) -> list[Translation]:
        end = min(max(end, optional_end), self.size)
        if start >= end:
            return []
        return [Translation(start, end, self.offset + start)]

    def add_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        pass

    def remove_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        pass

    def writeback(self, start: int, end: int, sync: bool) -> None:
        pass

    def punch_hole(self, offset: int, length: int) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def resident(self, offset: int) -> bool:
        return True
