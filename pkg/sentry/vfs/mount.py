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
    from pkg.sentry.vfs.propagation import PeerGroup
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
        "group",
        "id",
        "master",
        "ns",
        "parent",
        "point",
        "root",
        "source",
        "umounted",
        "unbindable",
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
        # Propagation (propagation.py): the peer group of a shared mount,
        # the group a slave receives from, and MS_UNBINDABLE. A new mount
        # is private.
        self.group: PeerGroup | None = None
        self.master: PeerGroup | None = None
        self.unbindable = False
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

    @property
    def shared(self) -> bool:
        """Reports whether the mount is shared (in a peer group)."""
        return self.group is not None

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

    A namespace is referenced by the fs contexts of the tasks in it
    (FSContext keeps it) and by open /proc/pid/ns/mnt files; when the last
    reference goes its mounts are unmounted, as put_mnt_ns does.

    Attributes:
        root: the mount at the top of the tree.
        ino: the inode number /proc/pid/ns/mnt shows for it.
        mounts: how many mounts are in it, for the mount limit.
    """

    __slots__ = ("__weakref__", "_refs", "_refs_mu", "ino", "mounts", "root")

    def __init__(self, root: Mount, refs: int = 1) -> None:
        """Makes root the root of a new namespace.

        Args:
            root: the root mount, attached nowhere.
            refs: the references the creator holds; the sandbox's own
                namespace keeps one forever.
        """
        self.root = root
        self.ino = root.vfs.new_mount_namespace_ino()
        root.ns = self
        self.mounts = 1
        self._refs = refs
        self._refs_mu = threading.Lock()

    def __repr__(self) -> str:
        return f"MountNamespace(ino={self.ino})"

    def inc_ref(self) -> None:
        """Takes a reference (an fs context, an ns file)."""
        with self._refs_mu:
            self._refs += 1

    def try_inc_ref(self) -> bool:
        """Takes a reference unless the namespace is already released."""
        with self._refs_mu:
            if self._refs <= 0:
                return False
            self._refs += 1
            return True

    def dec_ref(self) -> None:
        """Drops a reference; the last one unmounts every mount of the
        namespace."""
        with self._refs_mu:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self.root.vfs.release_mount_namespace(self)
