"""AnonFile: files on the anonymous inode (fs/anon_inodes.c).

eventfds, epoll instances, signalfds and timerfds have no name: Linux makes
them all on one shared inode of the internal anon_inodefs, so fstat reports
the same inode (mode 0600 without a file type, owned by root) for every one
of them, and /proc/pid/fd shows "anon_inode:[kind]". AnonFile gives its
subclasses those attributes: one inode per VirtualFilesystem, on a device
number of its own.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from pkg.abi.linux import fs as FS
from pkg.sentry.vfs.file_description import FileDescription
from pkg.sentry.vfs.inode_attrs import InodeAttrs, next_anon_ino

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.abi.linux.stat import Statx
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.vfs import VirtualFilesystem

_mu = threading.Lock()
_inodes: weakref.WeakKeyDictionary[VirtualFilesystem, tuple[InodeAttrs, int]] = (
    weakref.WeakKeyDictionary()
)


def _anon_inode(vfs: VirtualFilesystem) -> tuple[InodeAttrs, int]:
    """Returns vfs's anonymous inode and its device minor, made on first
    use (anon_inode_inode)."""
    with _mu:
        entry = _inodes.get(vfs)
        if entry is None:
            attrs = InodeAttrs(next_anon_ino(), 0o600, 0, 0)
            entry = (attrs, vfs.get_anonymous_device_minor())
            _inodes[vfs] = entry
        return entry


class AnonFile(FileDescription):
    """AnonFile is a FileDescription on the anonymous inode; subclasses
    name their kind in NAME."""

    __slots__ = ()

    NAME = "unknown"

    def display_name(self) -> str:
        return f"anon_inode:[{self.NAME}]"

    def stat(self, t: Task, mask: int) -> Statx:
        attrs, minor = _anon_inode(t.kernel.vfs)
        return attrs.statx(0, minor, mask)

    def statfs(self, t: Task) -> Statfs:
        return FS.Statfs(type=FS.ANON_INODE_FS_MAGIC)
