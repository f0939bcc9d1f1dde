"""tmpfs open directories: getdents and seeking (dcache_readdir)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.inode import Directory, TmpfsDentry
from pkg.sentry.vfs import directory_fd as vfs_directory_fd
from pkg.sentry.vfs.dirent import Dirent

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions


class DirectoryFD(vfs_directory_fd.DirectoryFD):
    """DirectoryFD is an open tmpfs directory. Its offset is 0 for ".", 1
    for "..", and then the dir_offset of the next child to return, so that
    entries added or removed while reading neither repeat nor hide the
    others."""

    __slots__ = ("dentry",)

    def __init__(self, dentry: TmpfsDentry, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags, vd)
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
            parent = d.parent if d.parent is not None else d
            if not self.emit_dots_locked(cb, inode.ino, parent.inode.ino):
                return
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

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self._dir.statx()

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self._dir.setstat(t, t.creds, opts, via_fd=True)

    def sync(self, t: Task) -> None:
        return

    def file_locks(self) -> FileLocks | None:
        return self.dentry.inode.locks
