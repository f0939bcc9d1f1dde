"""memfd files: anonymous memory-backed files with seals (memfd_create(2)).

A memfd is a file with no name in any filesystem whose contents live in the
MemoryFile, as a shmem file does in Linux. Its pages are a memory-only
FileCache, which is also what mmap maps, so read, write and every mapping of
the file share the same pages.

Seals (fcntl F_ADD_SEALS) restrict what may be done to the contents from
then on; mm/memfd.c and mm/shmem.c define the rules followed here.

TODO(#3): once the VFS has tmpfs, a memfd should be an unlinked tmpfs
regular file (so that fstat, ftruncate, fallocate and /proc/self/fd reopen
work through the common paths); this module then shrinks to the seal rules.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import memfd as MFD
from pkg.abi.linux.mman import PROT_WRITE
from pkg.abi.linux.stat import S_IFREG, STATX_SIZE, Statx
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.llseek import generic_llseek

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.pgalloc.memory_file import MemoryFile
    from pkg.sentry.vfs.options import SetStatOptions

# The largest file size (MAX_LFS_FILESIZE).
MAX_FILE_SIZE = (1 << 63) - 1
# The device of the internal shmem mount, as /proc/[pid]/maps shows it.
_SHMEM_DEV = 1
_inos = itertools.count(1)


class MemfdInode:
    """MemfdInode is the contents and seals of one memfd.

    Attributes:
        cache: the pages (a memory-only FileCache; also the Mappable).
        seals: the F_SEAL_* seals.
        name: the name given to memfd_create, without "memfd:".
        ino: the inode number.
        mode: the file mode bits (0777, or 0666 with MFD_NOEXEC_SEAL).
    """

    __slots__ = ("cache", "ino", "mode", "mu", "name", "seals")

    def __init__(self, mf: MemoryFile, name: str, seals: int, mode: int) -> None:
        self.cache = FileCache(mf)
        self.name = name
        self.seals = seals
        self.mode = mode
        self.ino = next(_inos)
        # Serialises size changes against seal changes (inode_lock).
        self.mu = threading.Lock()

    @property
    def path(self) -> str:
        """What /proc shows for the file."""
        return f"/memfd:{self.name} (deleted)"


class MemfdFile(FileDescription):
    """MemfdFile is an open memfd."""

    __slots__ = ("_offset", "_offset_mu", "inode")

    def __init__(self, inode: MemfdInode) -> None:
        super().__init__(F.O_RDWR | F.O_LARGEFILE)
        self.inode = inode
        self._offset = 0
        self._offset_mu = threading.Lock()

    def release(self) -> None:
        self.inode.cache.dec_ref()

    def display_name(self) -> str:
        return self.inode.path

    def reopen(self, t: Task | None, flags: int) -> FileDescription:
        """Opens the memfd anew (/proc/pid/fd/N): a new offset, the
        access mode asked for, the same contents and seals."""
        self.inode.cache.inc_ref()
        f = MemfdFile(self.inode)
        f.flags = flags & FILE_STATUS_FLAGS | F.O_LARGEFILE
        return f

    # I/O.

    def read(self, t: Task, length: int) -> bytes:
        with self._offset_mu:
            data = self.inode.cache.read(self._offset, length)
            self._offset += len(data)
            return data

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        return self.inode.cache.read(offset, length)

    def write(self, t: Task, data: bytes) -> int:
        with self._offset_mu:
            if self.flags & F.O_APPEND:
                self._offset = self.inode.cache.size()
            n = self._write_at(data, self._offset)
            self._offset += n
            return n

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        return self._write_at(data, offset)

    def _write_at(self, data: bytes, offset: int) -> int:
        inode = self.inode
        with inode.mu:
            if inode.seals & (MFD.F_SEAL_WRITE | MFD.F_SEAL_FUTURE_WRITE):
                raise SyscallError(errno.EPERM)
            end = offset + len(data)
            if end > MAX_FILE_SIZE:
                raise SyscallError(errno.EFBIG)
            if inode.seals & MFD.F_SEAL_GROW and end > inode.cache.size():
                raise SyscallError(errno.EPERM)
            return inode.cache.write(offset, data)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self._offset_mu:
            size = self.inode.cache.size()

            def data_or_hole(offset: int, whence: int) -> int:
                # Unlike Linux, holes inside the file are not reported: the
                # whole file reads as data.
                if offset < 0 or offset >= size:
                    raise SyscallError(errno.ENXIO)
                return offset if whence == F.SEEK_DATA else size

            self._offset = generic_llseek(
                self._offset, offset, whence, lambda: size, data_or_hole, MAX_FILE_SIZE
            )
            return self._offset

    def truncate(self, t: Task, size: int) -> None:
        """Sets the file size (ftruncate(2)), as the seals allow."""
        inode = self.inode
        with inode.mu:
            old = inode.cache.size()
            if size < old and inode.seals & MFD.F_SEAL_SHRINK:
                raise SyscallError(errno.EPERM)
            if size > old and inode.seals & MFD.F_SEAL_GROW:
                raise SyscallError(errno.EPERM)
        inode.cache.truncate(size)

    def size(self) -> int:
        """Returns the file size."""
        return self.inode.cache.size()

    # Attributes (fstat(2), ftruncate(2)), until a memfd is a tmpfs file.

    def stat(self, t: Task, mask: int) -> Statx:
        inode = self.inode
        size = inode.cache.size()
        return Statx(
            nlink=0,
            mode=S_IFREG | inode.mode,
            ino=inode.ino,
            size=size,
            blocks=inode.cache.cached_bytes // 512,
            dev_minor=_SHMEM_DEV,
        )

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        # TODO(#5): chmod, chown and utimes of a memfd come with making it a
        # tmpfs file; only the size can change.
        if opts.mask & ~STATX_SIZE:
            raise SyscallError(errno.EPERM)
        if opts.mask & STATX_SIZE:
            self.truncate(t, opts.size)

    # Mapping.

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        inode = self.inode
        if not opts.private and inode.seals & (
            MFD.F_SEAL_WRITE | MFD.F_SEAL_FUTURE_WRITE
        ):
            # A sealed file cannot gain writable shared mappings, not even by
            # mprotect later (mm/memfd.c memfd_check_seals_mmap).
            if opts.prot & PROT_WRITE:
                raise SyscallError(errno.EPERM)
            opts.max_prot &= ~PROT_WRITE
        opts.mappable = inode.cache
        opts.identity = MappingIdentity(_SHMEM_DEV, inode.ino, inode.path)

    # Seals.

    def get_seals(self) -> int:
        return self.inode.seals

    def add_seals(self, seals: int) -> None:
        if not self.writable:
            raise SyscallError(errno.EPERM)
        if seals & ~MFD.F_ALL_SEALS:
            raise SyscallError(errno.EINVAL)
        inode = self.inode
        with inode.mu:
            if inode.seals & MFD.F_SEAL_SEAL:
                raise SyscallError(errno.EPERM)
            if (
                seals & MFD.F_SEAL_WRITE
                and not inode.seals & MFD.F_SEAL_WRITE
                and inode.cache.writable_mappings()
            ):
                raise SyscallError(errno.EBUSY)
            if seals & MFD.F_SEAL_EXEC and inode.mode & 0o111:
                # F_SEAL_EXEC on an executable file makes it W^X.
                seals |= (
                    MFD.F_SEAL_SHRINK
                    | MFD.F_SEAL_GROW
                    | MFD.F_SEAL_WRITE
                    | MFD.F_SEAL_FUTURE_WRITE
                )
            inode.seals |= seals


def new_memfd(mf: MemoryFile, name: str, flags: int) -> MemfdFile:
    """Creates a memfd as memfd_create(2) does with already validated flags."""
    seals = MFD.F_SEAL_SEAL
    mode = 0o777
    if flags & MFD.MFD_NOEXEC_SEAL:
        mode = 0o666
        seals = MFD.F_SEAL_EXEC
    elif flags & MFD.MFD_ALLOW_SEALING:
        seals = 0
    return MemfdFile(MemfdInode(mf, name, seals, mode))
