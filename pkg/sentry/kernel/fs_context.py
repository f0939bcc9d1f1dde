"""FSContext: a task's root and working directory (struct fs_struct)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.sentry.vfs.dentry import VirtualDentry

if TYPE_CHECKING:
    from pkg.sentry.vfs.mount import MountNamespace
    from pkg.sentry.vfs.vfs import VirtualFilesystem


class FSContext:
    """FSContext holds the root, the working directory, the umask and the
    mount namespace of the tasks that share it (CLONE_FS).

    root and cwd are VirtualDentries on which the context holds references,
    so that their mounts are busy. Read them with the accessors; change them
    with set_root/set_cwd.

    Unlike Linux, which keeps the mount namespace in nsproxy, the namespace
    lives here: unshare(CLONE_NEWNS) unshares the fs context too, clone
    refuses CLONE_NEWNS with CLONE_FS, and setns into a mount namespace
    needs a context of one's own, so the tasks sharing a context always
    share a namespace. The context holds a reference on its namespace.
    """

    __slots__ = ("_cwd", "_root", "mount_ns", "mu", "umask", "users")

    def __init__(
        self,
        root: VirtualDentry,
        cwd: VirtualDentry,
        umask: int = 0o022,
        mount_ns: MountNamespace | None = None,
    ) -> None:
        self.mu = threading.Lock()
        root.inc_ref()
        cwd.inc_ref()
        self._root = root
        self._cwd = cwd
        self.umask = umask
        self.mount_ns = mount_ns if mount_ns is not None else root.mount.ns
        if self.mount_ns is not None:
            self.mount_ns.inc_ref()
        self.users = 1

    @property
    def root(self) -> VirtualDentry:
        """The root directory (chroot)."""
        return self._root

    @property
    def cwd(self) -> VirtualDentry:
        """The working directory."""
        return self._cwd

    def set_root(self, vd: VirtualDentry) -> None:
        """Changes the root directory (chroot(2))."""
        vd.inc_ref()
        with self.mu:
            old, self._root = self._root, vd
        old.dec_ref()

    def set_cwd(self, vd: VirtualDentry) -> None:
        """Changes the working directory (chdir(2))."""
        vd.inc_ref()
        with self.mu:
            old, self._cwd = self._cwd, vd
        old.dec_ref()

    def swap_umask(self, umask: int) -> int:
        """Sets the umask and returns the previous one (umask(2))."""
        with self.mu:
            old, self.umask = self.umask, umask & 0o777
        return old

    def fork(self) -> FSContext:
        """Returns a copy for a child without CLONE_FS."""
        with self.mu:
            return FSContext(self._root, self._cwd, self.umask, self.mount_ns)

    def fork_new_mount_ns(self, vfs: VirtualFilesystem) -> FSContext:
        """Returns a copy in a copy of the mount namespace, with the root
        and working directory on the copies of their mounts, as
        copy_mnt_ns moves them (unshare and clone with CLONE_NEWNS)."""
        with self.mu:
            root, cwd, umask, ns = self._root, self._cwd, self.umask, self.mount_ns
        assert ns is not None
        new_ns, copies = vfs.copy_mount_namespace(ns)

        def moved(vd: VirtualDentry) -> VirtualDentry:
            copy = copies.get(id(vd.mount))
            return vd if copy is None else VirtualDentry(copy, vd.dentry)

        return FSContext(moved(root), moved(cwd), umask, new_ns)

    def set_mount_ns(self, ns: MountNamespace, root: VirtualDentry) -> None:
        """Moves the context into ns with root as both its root and working
        directory (setns(2) into a mount namespace).

        Preconditions: no other task shares the context.
        """
        ns.inc_ref()
        root.inc_ref()
        root.inc_ref()
        with self.mu:
            old_ns, self.mount_ns = self.mount_ns, ns
            old_root, self._root = self._root, root
            old_cwd, self._cwd = self._cwd, root
        old_root.dec_ref()
        old_cwd.dec_ref()
        if old_ns is not None:
            old_ns.dec_ref()

    def dec_users(self) -> None:
        """Drops one task's use; the last user releases root, cwd and the
        mount namespace."""
        with self.mu:
            self.users -= 1
            last = self.users == 0
        if last:
            self._root.dec_ref()
            self._cwd.dec_ref()
            if self.mount_ns is not None:
                self.mount_ns.dec_ref()
