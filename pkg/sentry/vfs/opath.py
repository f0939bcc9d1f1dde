"""O_PATH files: handles on a path that allow no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.file_description import FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.options import SetStatOptions, SetXattrOptions

# The open flags an O_PATH file keeps (O_PATH_FLAGS less O_CLOEXEC).
_OPATH_KEPT = F.O_PATH | F.O_DIRECTORY | F.O_NOFOLLOW


class OpathFD(FileDescription):
    """OpathFD is an O_PATH open file. It names vd for *at system calls,
    fchdir, fstat and fstatfs; everything else fails with EBADF, as Linux's
    fdget refuses O_PATH files."""

    __slots__ = ()

    def __init__(self, vd: VirtualDentry, flags: int) -> None:
        super().__init__(flags & _OPATH_KEPT | F.O_PATH, vd)

    def read(self, t: Task, length: int) -> bytes:
        raise SyscallError(errno.EBADF)

    def write(self, t: Task, data: bytes) -> int:
        raise SyscallError(errno.EBADF)

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        raise SyscallError(errno.EBADF)

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        raise SyscallError(errno.EBADF)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        raise SyscallError(errno.EBADF)

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        raise SyscallError(errno.EBADF)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        raise SyscallError(errno.EBADF)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        raise SyscallError(errno.EBADF)

    def listxattr(self, t: Task) -> list[bytes]:
        raise SyscallError(errno.EBADF)

    def getxattr(self, t: Task, name: bytes) -> bytes:
        raise SyscallError(errno.EBADF)

    def setxattr(self, t: Task, opts: SetXattrOptions) -> None:
        raise SyscallError(errno.EBADF)

    def removexattr(self, t: Task, name: bytes) -> None:
        raise SyscallError(errno.EBADF)

    def sync(self, t: Task) -> None:
        raise SyscallError(errno.EBADF)

    def allocate(self, t: Task, mode: int, offset: int, length: int) -> None:
        raise SyscallError(errno.EBADF)

    def readiness(self, mask: int) -> int:
        return 0
