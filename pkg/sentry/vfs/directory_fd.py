"""DirectoryFD: what every open directory does the same way.

Each filesystem decides how a directory's entries are listed and what its
offsets mean, but Linux gives every directory the same surroundings: the
offset may be set with SEEK_SET or SEEK_CUR only (dcache_dir_lseek), within
a signed 64-bit d_off; read(2) fails with EISDIR (generic_read_dir); and
the first two entries are "." and "..", at offsets 0 and 1 (dir_emit_dots).

Filesystems that serve a listing taken as a snapshot (gofer, overlay, hostfs,
kernfs) also share its offsets: 0 is ".", 1 is "..", n + 2 the n-th entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.dirent import Dirent
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.llseek import generic_llseek

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback

# (name, DT_* type, inode number) of one entry of a listing.
DirEntry = tuple[bytes, int, int]


class DirectoryFD(FileDescription):
    """DirectoryFD is the base of an open directory of a filesystem.

    Subclasses implement iterate_dirents; the helpers below that end in
    _locked expect pos_mu held.
    """

    __slots__ = ()

    def __init__(self, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)

    def emit_dots_locked(self, cb: DirentCallback, ino: int, parent_ino: int) -> bool:
        """emit_dots_locked gives cb "." and ".." if the offset is before
        them and moves the offset past each one cb takes.

        Preconditions: pos_mu held.

        Args:
            cb: the consumer of entries.
            ino: the directory's inode number.
            parent_ino: its parent's (its own for a root).

        Returns:
            False if cb had no room, which ends the iteration.
        """
        if self.offset == 0:
            if not cb(Dirent(b".", S.DT_DIR, ino, 1)):
                return False
            self.offset = 1
        if self.offset == 1:
            if not cb(Dirent(b"..", S.DT_DIR, parent_ino, 2)):
                return False
            self.offset = 2
        return True

    def emit_listing_locked(
        self, cb: DirentCallback, entries: Sequence[DirEntry]
    ) -> None:
        """emit_listing_locked gives cb the entries of a listing from the
        offset on, offsets being positions in it after "." and "..", and
        moves the offset past each one cb takes.

        Preconditions: pos_mu held; the offset is past ".." (emit_dots_locked
        returned True).

        Args:
            cb: the consumer of entries.
            entries: the listing, "." and ".." aside.
        """
        while self.offset - 2 < len(entries):
            name, dtype, ino = entries[self.offset - 2]
            if not cb(Dirent(name, dtype, ino, self.offset + 1)):
                return
            self.offset += 1

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            self.offset = generic_llseek(self.offset, offset, whence)
            return self.offset

    def read(self, t: Task, length: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)
