"""tmpfs open directories: getdents and seeking (dcache_readdir)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.inode import Directory, TmpfsDentry
from pkg.sentry.vfs.dirent import Dirent
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions

# Directory offsets fit in a signed 64-bit d_off.
_MAX_OFFSET = (1 << 63) - 1


class DirectoryFD(FileDescription):
    """DirectoryFD is an open tmpfs directory. Its offset is 0 for ".", 1
    for "..", and then the dir_offset of the next child to return, so that
    entries added or removed while reading neither repeat nor hide the
    others."""

    __slots__ = ("dentry",)

    def __init__(self, dentry: TmpfsDentry, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.dentry = dentry

    @property
    def _dir(self) -> Directory:
        inode = self.dentry.inode
        assert isinstance(inode, Directory)
        return inode

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        d = self.dentry
        inode = self._dir
        fs = inode.fs
        with self.pos_mu, fs.mu:
            if d.is_dead():
                raise SyscallError(errno.ENOENT)
            if self.offset == 0:
                if not cb(Dirent(b".", S.DT_DIR, inode.ino, 1)):
                    return
                self.offset = 1
            if self.offset == 1:
                parent = d.parent if d.parent is not None else d
                if not cb(Dirent(b"..", S.DT_DIR, parent.inode.ino, 2)):
                    return
                self.offset = 2
            for child in inode.entries_from(self.offset):
                next_off = child.dir_offset + 1
                entry = Dirent(
                    child.name,
                    S.dirent_type(child.inode.mode),
                    child.inode.ino,
                    next_off,
                )
                if not cb(entry):
                    return
                self.offset = next_off
        inode.touch_atime()

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            if whence == F.SEEK_SET:
                new = offset
            elif whence == F.SEEK_CUR:
                new = self.offset + offset
            else:
                raise SyscallError(errno.EINVAL)
            if new < 0 or new > _MAX_OFFSET:
                raise SyscallError(errno.EINVAL)
            self.offset = new
            return new

    def read(self, t: Task, length: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self._dir.statx()

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self._dir.setstat(t, t.creds, opts, via_fd=True)

    def sync(self, t: Task) -> None:
        return

    def file_locks(self) -> FileLocks | None:
        return self.dentry.inode.locks
