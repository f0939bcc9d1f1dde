"""Mount and MountNamespace.

A Mount attaches one Filesystem's subtree (its root Dentry, which for a bind
mount is any directory of that filesystem) at a mount point, a
VirtualDentry of the parent mount. A MountNamespace is a tree of mounts with
one root mount. The tree and the table that finds the mount sitting on a
(parent mount, dentry) pair belong to the VirtualFilesystem and change under
its lock.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import mount as MS
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# Per-mount flags (the MNT_* flags of Linux, kept as their MS_* values).
MOUNT_FLAGS_MASK = (
    MS.MS_RDONLY
    | MS.MS_NOSUID
    | MS.MS_NODEV
    | MS.MS_NOEXEC
    | MS.MS_NOATIME
    | MS.MS_NODIRATIME
    | MS.MS_RELATIME
    | MS.MS_STRICTATIME
    | MS.MS_NOSYMFOLLOW
)

_mount_ids = itertools.count(1)


class Mount:
    """Mount is one mount of a filesystem.

    Attributes:
        fs: the mounted filesystem.
        root: the dentry of fs at the top of this mount.
        flags: per-mount MS_* flags (MOUNT_FLAGS_MASK).
        id: the mount id of /proc/pid/mountinfo.
        parent: the mount this one sits in; None for a namespace root and
            for mounts not attached anywhere (pipes, detached mounts).
        point: the dentry of parent this mount sits on.
        ns: the namespace the mount belongs to, if any.
        children: mounts sitting on dentries of this one.
    """

    __slots__ = (
        "__weakref__",
        "_refs",
        "_refs_mu",
        "children",
        "flags",
        "fs",
        "id",
        "ns",
        "parent",
        "point",
        "root",
        "shared",
        "source",
        "umounted",
        "vfs",
    )

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs: Filesystem,
        root: Dentry,
        flags: int = 0,
        source: str = "none",
    ) -> None:
        self.vfs = vfs
        self.fs = fs
        self.root = root
        self.flags = flags & MOUNT_FLAGS_MASK
        self.source = source
        self.id = next(_mount_ids)
        self.parent: Mount | None = None
        self.point: Dentry | None = None
        self.ns: MountNamespace | None = None
        self.children: list[Mount] = []
        # Propagation: only private mounts are implemented; the flag is what
        # mountinfo shows. TODO(#5): shared and slave propagation.
        self.shared = False
        # Set once the mount has left its namespace (umount, MNT_DETACH).
        self.umounted = False
        # References held by open files and task roots/working directories.
        self._refs = 0
        self._refs_mu = threading.Lock()
        fs.inc_ref()

    def __repr__(self) -> str:
        return f"Mount(id={self.id}, fs={type(self.fs).__name__})"

    # References.

    def inc_ref(self) -> None:
        """Takes a reference (an open file, a root or working directory)."""
        with self._refs_mu:
            self._refs += 1

    def dec_ref(self) -> None:
        """Drops a reference; a detached mount's filesystem is released
        with the last one."""
        with self._refs_mu:
            self._refs -= 1
            last = self._refs == 0
        if last and self.umounted:
            self.fs.dec_ref()

    def refs(self) -> int:
        """Returns the number of references (for umount's EBUSY check)."""
        return self._refs

    # Flags.

    @property
    def read_only(self) -> bool:
        """Reports whether the mount is read-only."""
        return bool(self.flags & MS.MS_RDONLY)

    def check_begin_write(self) -> None:
        """Raises EROFS if the mount or its filesystem is read-only.

        Filesystems call it before any change through this mount.
        """
        if self.flags & MS.MS_RDONLY or self.fs.read_only:
            raise SyscallError(errno.EROFS)

    def is_under(self, ancestor: Mount) -> bool:
        """Reports whether this mount is ancestor or mounted below it."""
        m: Mount | None = self
        while m is not None:
            if m is ancestor:
                return True
            m = m.parent
        return False


class MountNamespace:
    """MountNamespace is a tree of mounts (struct mnt_namespace).

    Attributes:
        root: the mount at the top of the tree.
    """

    __slots__ = ("__weakref__", "id", "mounts", "root", "users")

    _ids = itertools.count(1)

    def __init__(self, root: Mount) -> None:
        self.root = root
        self.id = next(self._ids)
        root.ns = self
        # How many mounts are in the namespace, for the mount limit.
        self.mounts = 1
        # Tasks using this namespace.
        self.users = 1
