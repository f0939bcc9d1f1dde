"""Open directories of the overlay: the merged listing (readdir.c).

A merged directory lists its upper entries, then the lower entries that
neither an upper entry of the same name nor a whiteout hides. The listing
is taken when reading starts (offset 0) and served from that snapshot;
offsets are positions in it, 0 and 1 being "." and "..".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.directory_fd import DirectoryFD, DirEntry
from pkg.sentry.vfs.dirent import Dirent
from pkg.sentry.vfs.options import OpenOptions

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.overlay.dentry import OverlayDentry
    from pkg.sentry.fsimpl.overlay.overlay import Layer, OverlayFilesystem
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions


def _layer_entries(fs: OverlayFilesystem, layer: Layer, d: Dentry) -> list[DirEntry]:
    """Returns (name, type, ino) of a layer directory's entries but "." and
    "..". Precondition: fs.mu held."""
    fd = fs.vfs.open_at(
        None, fs.creds, layer.here(d), OpenOptions(F.O_RDONLY | F.O_DIRECTORY)
    )
    out: list[DirEntry] = []

    def take(e: Dirent) -> bool:
        if e.name not in (b".", b".."):
            out.append((e.name, e.type, e.ino))
        return True

    try:
        fd.iterate_dirents(None, take)  # type: ignore[arg-type]
    finally:
        fd.dec_ref()
    return out


def merged_entries(fs: OverlayFilesystem, d: OverlayDentry) -> list[DirEntry]:
    """Returns (name, type, ino) of what directory d shows, "." and ".."
    aside. Precondition: fs.mu held."""
    out: dict[bytes, tuple[int, int]] = {}
    if d.upper is not None:
        for name, dtype, ino in _layer_entries(fs, fs.upper, d.upper):
            out[name] = (dtype, ino)
    upper_names = set(out)
    if d.merges_lower():
        assert d.lower is not None
        for name, dtype, ino in _layer_entries(fs, fs.lower, d.lower):
            if name not in out and name not in d.whiteouts:
                out[name] = (dtype, ino)
    entries = []
    for name, (layer_type, layer_ino) in out.items():
        child = d.children.get(name)
        if child is not None:
            entries.append((name, S.dirent_type(child.mode), child.ino))
        elif name in upper_names:
            entries.append((name, layer_type, fs.upper_ino_of(layer_ino)))
        else:
            entries.append((name, layer_type, layer_ino))
    return entries


class OverlayDirectoryFD(DirectoryFD):
    """OverlayDirectoryFD is an open directory of an overlay."""

    __slots__ = ("_entries", "dentry")

    def __init__(self, dentry: OverlayDentry, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags, vd)
        self.dentry = dentry
        self._entries: list[DirEntry] | None = None

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        d = self.dentry
        fs = d.fs
        with self.pos_mu:
            if self.offset == 0 or self._entries is None:
                with fs.mu:
                    if d.is_dead():
                        raise SyscallError(errno.ENOENT)
                    self._entries = merged_entries(fs, d)
            parent = d.parent if d.parent is not None else d
            if self.emit_dots_locked(cb, d.ino, parent.ino):
                self.emit_listing_locked(cb, self._entries)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.dentry.fs.statx(self.dentry)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        fs = self.dentry.fs
        if opts.mask:
            self.vd.mount.check_begin_write()
        with fs.mu:
            fs.setstat(t, t.creds, self.dentry, opts, via_fd=True)

    def sync(self, t: Task) -> None:
        return

    def file_locks(self) -> FileLocks | None:
        return self.dentry.locks
