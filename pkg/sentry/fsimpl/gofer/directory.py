"""Open directories of the gofer filesystem.

A directory's entries are read from the gofer in one go when reading starts
(offset 0) and served from that snapshot, so that getdents(2) in small
buffers costs one round of requests per pass, not one per call. The same
requests look up every entry (GoferFilesystem.list_dir), since a listing is
usually followed by a stat of each entry. Offsets are
positions in the snapshot: 0 is ".", 1 is "..", n + 2 the n-th entry.
Rewinding takes a new snapshot, which is what readdir(3) users expect to see
after changing the directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import stat as S
from pkg.sentry.vfs.directory_fd import DirectoryFD, DirEntry

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.gofer.inode import GoferDentry
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions


class GoferDirectoryFD(DirectoryFD):
    """GoferDirectoryFD is an open directory of a gofer mount."""

    __slots__ = ("_entries", "dentry")

    def __init__(self, dentry: GoferDentry, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags, vd)
        self.dentry = dentry
        self._entries: list[DirEntry] | None = None

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        d = self.dentry
        with self.pos_mu:
            if self.offset == 0 or self._entries is None:
                self._entries = d.inode.fs.list_dir(d)
            parent = d.parent if d.parent is not None else d
            if self.emit_dots_locked(cb, d.inode.ino, parent.inode.ino):
                self.emit_listing_locked(cb, self._entries)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.dentry.inode.statx(self.dentry)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        fs = self.dentry.inode.fs
        if opts.mask:
            self.vd.mount.check_begin_write()
        with fs.locked():
            fs.setstat(t, t.creds, self.dentry, opts, via_fd=True)

    def statfs(self, t: Task) -> object:
        return self.dentry.inode.fs.statfs(self.dentry)

    def sync(self, t: Task) -> None:
        d = self.dentry
        fs = d.inode.fs
        with fs.locked():
            fs.rpc(fs.client.fsync, fs.node(d))

    def file_locks(self) -> FileLocks | None:
        return self.dentry.inode.locks
