"""Dentries of the overlay filesystem.

An OverlayDentry is one name of the merged tree. It points at the file of
that name in the upper layer, in the lower layer, or both (a directory
present in both is merged; for anything else the upper file hides the lower
one). After copy-up a dentry keeps its lower file as its origin: its inode
number stays the lower file's and, for a directory, the lower directory's
entries stay merged into it even after a rename moved it elsewhere (what
Linux's overlayfs records in the redirect xattr).

Whiteouts and opaque directories are kept here, in the dentries, rather
than as special files in the upper layer: both layers live exactly as long
as the overlay, so nothing but the overlay ever reads them. Dentries are
therefore never evicted while their filesystem lives.

TODO(#5): evict dentries of lower-only files that nothing refers to; every
name ever looked up stays in memory (the gofer layer keeps its node ids
bounded, so no host resource grows with it).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import stat as S
from pkg.sentry.vfs.dentry import Dentry, NamedDentry
from pkg.sentry.vfs.lock import FileLocks
from pkg.sentry.vfs.permissions import generic_check_permissions
from pkg.sentry.vfs.watches import Watches

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.overlay.overlay import OverlayFilesystem
    from pkg.sentry.fsimpl.pipefs.pipe import Pipe
    from pkg.sentry.kernel.credentials import Credentials


class OverlayDentry(NamedDentry):
    """OverlayDentry is one name of the merged tree.

    Attributes:
        fs: the overlay.
        parent: the directory holding the name (None for the root).
        name: the name.
        upper: the upper layer's dentry, once the file exists there.
        lower: the lower layer's dentry, if the name came from the lower
            layer (kept after copy-up as the origin).
        children: looked-up names of a directory: a dentry, or None for a
            name known not to exist.
        whiteouts: names of a directory that hide lower files.
        opaque: the directory shows none of its lower directory's entries.
        mode, uid, gid: the file's type, permissions and owner (the layer
            holding the file has the same; kept here for permission checks
            on every walk).
        ino: the inode number the sandbox sees.
        locks: advisory locks of the file.
        pipe: a FIFO's pipe, made on first open.
        lower_stat: the attributes of a file not (yet) copied up, as the
            sandbox sees them.
    """

    __slots__ = (
        "attr_mu",
        "children",
        "fs",
        "gid",
        "ino",
        "locks",
        "lower",
        "lower_stat",
        "mode",
        "opaque",
        "pipe",
        "uid",
        "upper",
        "whiteouts",
    )

    def __init__(
        self,
        fs: OverlayFilesystem,
        parent: OverlayDentry | None,
        name: bytes,
        upper: Dentry | None,
        lower: Dentry | None,
        mode: int,
        uid: int,
        gid: int,
        ino: int,
    ) -> None:
        super().__init__()
        self.fs = fs
        self.parent = parent
        self.name = name
        self.upper = upper
        self.lower = lower
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.ino = ino
        self.attr_mu = threading.Lock()
        self.children: dict[bytes, OverlayDentry | None] = {}
        self.whiteouts: set[bytes] = set()
        self.opaque = False
        self.locks = FileLocks()
        self.pipe: Pipe | None = None
        self.lower_stat: S.Statx | None = None

    def __repr__(self) -> str:
        layers = ("U" if self.upper is not None else "") + (
            "L" if self.lower is not None else ""
        )
        return f"OverlayDentry({self.name!r}, {layers}, mode={self.mode:o})"

    def is_dir(self) -> bool:
        return self.mode & S.S_IFMT == S.S_IFDIR

    @property
    def file_type(self) -> int:
        """The S_IFMT bits of the mode."""
        return self.mode & S.S_IFMT

    def merges_lower(self) -> bool:
        """Reports whether a directory's lower entries show through."""
        return self.lower is not None and not self.opaque and self.is_dir()

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        """Checks access against the file's mode and owner."""
        generic_check_permissions(creds, ats, self.mode, self.uid, self.gid)

    # Watches. A file not copied up (and any directory, which has one
    # name) keeps them here. An upper file's hard links share one Watches,
    # kept by the overlay under the upper inode (link_watches), so that a
    # watch added through either name is the same watch and a link count
    # change reaches it; a copy-up moves the dentry's own there.

    def _shared_key(self) -> object | None:
        upper = self.upper
        if upper is None or self.is_dir():
            return None
        return upper.inode_key()

    def watches(self) -> Watches | None:
        key = self._shared_key()
        if key is None:
            return self._watches
        if self._watches is not None:
            return self._move_watches(key)
        return self.fs.link_watches.get(key)

    def ensure_watches(self) -> Watches:
        key = self._shared_key()
        if key is None:
            return super().ensure_watches()
        if self._watches is not None:
            return self._move_watches(key)
        return self.fs.link_watches.setdefault(key, Watches())

    def _move_watches(self, key: object) -> Watches:
        """Moves the watches made before copy-up to the upper file's."""
        own = self._watches
        assert own is not None
        self._watches = None
        shared = self.fs.link_watches.setdefault(key, own)
        if shared is not own:
            shared.adopt(own)
        return shared

    def forget_watches(self) -> None:
        """Drops the shared watches' entry once the upper file has no name
        left (they were ended by IN_DELETE_SELF)."""
        key = self._shared_key()
        if key is not None:
            self.fs.link_watches.pop(key, None)
