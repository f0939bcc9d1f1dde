"""MountTable: the mount tree operations of the VirtualFilesystem
(fs/namespace.c): mount, bind, move, umount, pivot_root, propagation types,
and copying and releasing mount namespaces.

The table that finds the mount sitting on a (parent mount, dentry) pair,
and every Mount's tree fields, change under VirtualFilesystem.mu; a method
named _locked expects it held. Mount operations resolve their paths first
and take mu after, as the filesystems' locks come before it. Propagation
(propagation.py) runs under mu too: a mount attached under a shared mount
is copied to its peers and slaves in the same step.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import mount as MS
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.vfs import propagation
from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
from pkg.sentry.vfs.mount import MOUNT_FLAGS_MASK, Mount, MountNamespace
from pkg.sentry.vfs.nsfs import INIT_MNT_NS_INO, alloc_ns_ino
from pkg.sentry.vfs.options import GetDentryOptions

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.filesystem import (
        Filesystem,
        FilesystemType,
        GetFilesystemOptions,
        RegisterFilesystemTypeOptions,
    )
    from pkg.sentry.vfs.resolving_path import PathOperation

log = logging.getLogger(__name__)

# Linux's default limit on mounts per namespace (fs.mount-max).
MOUNT_MAX = 100000


class MountTable:
    """MountTable is the mount half of VirtualFilesystem, which it is a
    base of; it uses the path resolution of the other half
    (get_dentry_at) and its filesystem types (new_filesystem).
    """

    mu: threading.RLock
    _fs_types: dict[str, tuple[FilesystemType, RegisterFilesystemTypeOptions]]

    def __init__(self) -> None:
        # (parent mount, mount point dentry) -> the mount on it.
        self._mounts_at: dict[tuple[Mount, Dentry], Mount] = {}
        # Peer group ids in use (mnt_group_ida): the smallest free is next.
        self._peer_group_ids: set[int] = set()
        self._mount_ns_count = 0

    if TYPE_CHECKING:

        def new_filesystem(
            self, creds: Credentials, fs_type_name: str, opts: GetFilesystemOptions
        ) -> tuple[Filesystem, Dentry]: ...

        def get_dentry_at(
            self,
            t: Task | None,
            creds: Credentials,
            pop: PathOperation,
            opts: GetDentryOptions,
        ) -> VirtualDentry: ...

    def new_mount_namespace_ino(self) -> int:
        """Returns the inode number of a new mount namespace: the first of
        the sandbox has the initial namespace's, later ones fresh numbers
        (proc_alloc_inum)."""
        with self.mu:
            self._mount_ns_count += 1
            n = self._mount_ns_count
        return INIT_MNT_NS_INO if n == 1 else alloc_ns_ino()

    def new_peer_group_id(self) -> int:
        """Returns the smallest peer group id not in use."""
        with self.mu:
            n = 1
            while n in self._peer_group_ids:
                n += 1
            self._peer_group_ids.add(n)
            return n

    def free_peer_group_id(self, n: int) -> None:
        """Lets a peer group id be used again."""
        with self.mu:
            self._peer_group_ids.discard(n)

    def new_mount_namespace(
        self, creds: Credentials, fs_type_name: str, opts: GetFilesystemOptions
    ) -> MountNamespace:
        """Creates a mount namespace whose root is a new filesystem."""
        fs, root = self.new_filesystem(creds, fs_type_name, opts)
        mnt = Mount(self, fs, root, opts.flags, opts.source)
        return MountNamespace(mnt)

    def new_disconnected_mount(
        self, fs: Filesystem, root: Dentry, flags: int = 0
    ) -> Mount:
        """Returns a mount of fs attached nowhere, for files that have no
        path (pipes, sockets, anonymous inodes)."""
        return Mount(self, fs, root, flags)

    def get_mount_at(self, mount: Mount, d: Dentry) -> Mount | None:
        """Returns the mount sitting on d in mount, if any."""
        with self.mu:
            return self._mounts_at.get((mount, d))

    def _connect_locked(self, mnt: Mount, vd: VirtualDentry) -> None:
        ns = vd.mount.ns
        if ns is not None and ns.mounts >= MOUNT_MAX:
            raise SyscallError(errno.ENOSPC)
        key = (vd.mount, vd.dentry)
        # Stack on whatever is already mounted there.
        while key in self._mounts_at:
            top = self._mounts_at[key]
            key = (top, top.root)
        parent, point = key
        mnt.parent = parent
        mnt.point = point
        mnt.ns = ns
        point._mounts += 1
        self._mounts_at[key] = mnt
        parent.children.append(mnt)
        if ns is not None:
            ns.mounts += 1

    def _disconnect_locked(self, mnt: Mount) -> None:
        parent, point = mnt.parent, mnt.point
        if parent is None or point is None:
            return
        del self._mounts_at[(parent, point)]
        point._mounts -= 1
        parent.children.remove(mnt)
        if mnt.ns is not None:
            mnt.ns.mounts -= 1
        mnt.parent = None
        mnt.point = None

    def connect_mount(self, mnt: Mount, vd: VirtualDentry) -> None:
        """Attaches mnt at vd (on top of any mount already there), and
        copies of it wherever vd's mount propagates to.

        Raises:
            SyscallError: ENOENT if vd was deleted.
        """
        with self.mu:
            if vd.dentry.is_dead():
                raise SyscallError(errno.ENOENT)
            self._attach_locked(mnt, [], vd)

    def _top_locked(self, vd: VirtualDentry) -> tuple[Mount, Dentry]:
        """Returns the mount and dentry a mount on vd would sit on: the
        root of the topmost mount stacked there, or vd itself."""
        key = (vd.mount, vd.dentry)
        while key in self._mounts_at:
            top = self._mounts_at[key]
            key = (top, top.root)
        return key

    def _clone_locked(
        self, src: Mount, root: Dentry, flags: int, slave: bool, shared: bool
    ) -> Mount:
        """Returns a new mount of src's filesystem at root, a dentry of
        src, with src's flags plus flags (clone_mnt); slave and shared as
        _copy_tree_locked."""
        m = Mount(self, src.fs, root, src.flags | flags, src.source)
        propagation.copy_propagation(src, m, slave)
        if slave and shared:
            propagation.make_shared(self, m)
        return m

    def _copy_tree_locked(
        self,
        src: Mount,
        root: Dentry,
        flags: int = 0,
        slave: bool = False,
        shared: bool = False,
        copy_unbindable: bool = False,
    ) -> tuple[Mount, list[tuple[Mount, Mount, Mount]]]:
        """Copies src from its dentry root down, with its submounts below
        root (copy_tree). The copies are not connected.

        Args:
            src: the mount copied.
            root: the copy's root, a dentry of src.
            flags: per-mount flags added to the top copy.
            slave: every copy receives from its original's peer group (a
                copy propagated to a slave); otherwise a copy of a shared
                mount is a peer of it.
            shared: with slave, every copy starts a peer group of its own.
            copy_unbindable: copy unbindable submounts too (a namespace
                copy); otherwise they, and what is below them, are left
                out.

        Returns:
            The top copy, and (original, copy, copy of its parent) for each
            submount copied, parents first. Each copy's point is the
            dentry it is to be connected on.
        """
        top = self._clone_locked(src, root, flags, slave, shared)
        out: list[tuple[Mount, Mount, Mount]] = []
        work = [(src, top)]
        while work:
            orig, copy_parent = work.pop()
            for child in list(orig.children):
                point = child.point
                assert point is not None
                if orig is src and not src.fs.is_descendant(root, point):
                    continue
                if child.unbindable and not copy_unbindable:
                    continue
                copy = self._clone_locked(child, child.root, 0, slave, shared)
                # The copy's mount point is recorded for connection later.
                copy.point = point
                out.append((child, copy, copy_parent))
                work.append((child, copy))
        return top, out

    def _attach_locked(
        self,
        mnt: Mount,
        subs: list[tuple[Mount, Mount, Mount]],
        vd: VirtualDentry,
    ) -> None:
        """Connects mnt and the copies subs below it (as _copy_tree_locked
        returns them) at vd, and propagates them (attach_recursive_mnt).

        A tree attached under a shared mount is shared: each of its mounts
        without a peer group gets one, and copies of the tree are attached
        at the same place in every mount the parent propagates to.
        """
        parent, point = self._top_locked(vd)
        tree = [mnt] + [c for _o, c, _p in subs]
        if parent.group is not None:
            for m in tree:
                propagation.make_shared(self, m)
        self._connect_locked(mnt, vd)
        for _orig, copy, parent_copy in subs:
            assert copy.point is not None
            self._connect_locked(copy, VirtualDentry(parent_copy, copy.point))
        if parent.group is not None:
            self._propagate_locked(parent, point, mnt, {id(m) for m in tree})

    def _propagate_locked(
        self, parent: Mount, point: Dentry, mnt: Mount, tree: set[int]
    ) -> None:
        """Mounts copies of mnt, just connected on point of parent, on the
        same dentry of every mount parent propagates to (propagate_mnt).

        A receiver whose subtree does not hold point gets nothing but still
        passes the event on, as the copy it would have received.

        Args:
            tree: ids of mnt and the mounts below it, which receive
                nothing.
        """
        # What each sender passes on: (copy, whether it goes as a slave).
        sent: dict[int, tuple[Mount, bool]] = {id(parent): (mnt, False)}
        for target, sender, as_slave in list(propagation.receivers(parent)):
            src, slave = sent[id(sender)]
            slave = slave or as_slave
            if (
                id(target) in tree
                or target.ns is None
                or not target.fs.is_descendant(target.root, point)
            ):
                sent[id(target)] = (src, slave)
                continue
            copy, subs = self._copy_tree_locked(
                src, src.root, slave=slave, shared=target.group is not None
            )
            # TODO(#5): Linux tucks a propagated mount under one already on
            # the receiver's dentry; here it is stacked on top.
            self._connect_locked(copy, VirtualDentry(target, point))
            for _orig, c, parent_copy in subs:
                assert c.point is not None
                self._connect_locked(c, VirtualDentry(parent_copy, c.point))
            tree.add(id(copy))
            tree.update(id(c) for _o, c, _p in subs)
            sent[id(target)] = (copy, False)

    def check_in_namespace(self, t: Task | None, mount: Mount) -> None:
        """Raises EINVAL unless mount is in t's mount namespace (check_mnt);
        the sentry itself (t None) may use any mount.

        Raises:
            SyscallError: EINVAL.
        """
        if t is not None and mount.ns is not t.fs.mount_ns:
            raise SyscallError(errno.EINVAL)

    def mount_at(
        self,
        t: Task | None,
        creds: Credentials,
        target: PathOperation,
        fs_type_name: str,
        opts: GetFilesystemOptions,
    ) -> Mount:
        """Mounts a new filesystem of a registered type at target
        (mount(2) without MS_BIND, MS_MOVE or MS_REMOUNT).

        Raises:
            SyscallError: EPERM without CAP_SYS_ADMIN or for a type
                applications may not mount, ENODEV for an unknown type,
                ENOTDIR for a non-directory target, path errors.
        """
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        entry = self._fs_types.get(fs_type_name)
        if entry is None:
            raise SyscallError(errno.ENODEV)
        if t is not None and not entry[1].allow_user_mount:
            raise SyscallError(errno.EPERM)
        vd = self.get_dentry_at(t, creds, target, GetDentryOptions())
        if not vd.dentry.is_dir():
            raise SyscallError(errno.ENOTDIR)
        self.check_in_namespace(t, vd.mount)
        fs, root = self.new_filesystem(creds, fs_type_name, opts)
        mnt = Mount(self, fs, root, opts.flags, opts.source)
        try:
            self.connect_mount(mnt, vd)
        except SyscallError:
            fs.dec_ref()
            raise
        return mnt

    def bind_at(
        self,
        t: Task | None,
        creds: Credentials,
        source: VirtualDentry,
        target: PathOperation,
        recursive: bool,
        flags: int = 0,
    ) -> Mount:
        """Bind-mounts source at target (MS_BIND, with MS_REC if
        recursive).

        Raises:
            SyscallError: EPERM without CAP_SYS_ADMIN, ENOTDIR when one of
                source and target is a directory and the other is not,
                EINVAL for a source outside the caller's namespace.
        """
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        vd = self.get_dentry_at(t, creds, target, GetDentryOptions())
        if vd.dentry.is_dir() != source.dentry.is_dir():
            raise SyscallError(errno.ENOTDIR)
        src = source.mount
        if src.umounted or src.unbindable:
            raise SyscallError(errno.EINVAL)
        self.check_in_namespace(t, vd.mount)
        self.check_in_namespace(t, src)
        with self.mu:
            if vd.dentry.is_dead() or source.dentry.is_dead():
                raise SyscallError(errno.ENOENT)
            # The copies are made before the new mount is connected, which
            # may sit below source itself.
            subs: list[tuple[Mount, Mount, Mount]] = []
            if recursive:
                mnt, subs = self._copy_tree_locked(src, source.dentry, flags)
            else:
                mnt = self._clone_locked(src, source.dentry, flags, False, False)
            try:
                self._attach_locked(mnt, subs, vd)
            except SyscallError:
                for m in [mnt] + [c for _o, c, _p in subs]:
                    propagation.make_private(self, m)
                    m.fs.dec_ref()
                raise
        return mnt

    def change_propagation(self, t: Task | None, vd: VirtualDentry, flags: int) -> None:
        """Makes the mount whose root is vd shared, slave, private or
        unbindable, with the mounts below it for MS_REC (do_change_type).

        Args:
            flags: exactly one of MS_SHARED, MS_SLAVE, MS_PRIVATE and
                MS_UNBINDABLE, with MS_REC or not.

        Raises:
            SyscallError: EINVAL if vd is not the root of a mount of t's
                namespace.
        """
        if vd.dentry is not vd.mount.root:
            raise SyscallError(errno.EINVAL)
        self.check_in_namespace(t, vd.mount)
        with self.mu:
            propagation.change_type(self, vd.mount, flags)

    def remount(self, vd: VirtualDentry, flags: int, bind: bool) -> None:
        """Changes a mount's flags (MS_REMOUNT; with MS_BIND only the
        per-mount flags).

        Raises:
            SyscallError: EINVAL if vd is not the root of a mount.
        """
        if vd.dentry is not vd.mount.root:
            raise SyscallError(errno.EINVAL)
        # TODO(#5): without MS_BIND, a remount also changes the filesystem's
        # own options (tmpfs size=...); only the mount flags change here.
        del bind
        with self.mu:
            vd.mount.flags = flags & MOUNT_FLAGS_MASK

    def move_mount(
        self,
        source: VirtualDentry,
        target: PathOperation,
        t: Task | None,
        creds: Credentials,
    ) -> None:
        """Moves the mount whose root is source to target (MS_MOVE); under a
        shared mount, the moved tree turns shared and copies of it appear
        where the new parent propagates to.

        Raises:
            SyscallError: EINVAL if source is not a mount's root, target
                is under it, source sits under a shared mount, or an
                unbindable tree would move under a shared one; ENOTDIR for
                a type mismatch.
        """
        mnt = source.mount
        if source.dentry is not mnt.root or mnt.parent is None:
            raise SyscallError(errno.EINVAL)
        vd = self.get_dentry_at(t, creds, target, GetDentryOptions())
        if vd.dentry.is_dir() != mnt.root.is_dir():
            raise SyscallError(errno.ENOTDIR)
        self.check_in_namespace(t, mnt)
        self.check_in_namespace(t, vd.mount)
        with self.mu:
            if vd.mount.is_under(mnt):
                raise SyscallError(errno.EINVAL)
            # As do_move_mount: a mount under a shared one stays put.
            if mnt.parent is not None and mnt.parent.group is not None:
                raise SyscallError(errno.EINVAL)
            if vd.dentry.is_dead():
                raise SyscallError(errno.ENOENT)
            old_place = VirtualDentry(mnt.parent, mnt.point)  # type: ignore[arg-type]
            self._disconnect_locked(mnt)
            parent, point = self._top_locked(vd)
            tree = list(propagation.subtree(mnt))
            if parent.group is not None:
                # A tree with an unbindable mount cannot be copied to the
                # peers (do_move_mount).
                if any(m.unbindable for m in tree):
                    self._connect_locked(mnt, old_place)
                    raise SyscallError(errno.EINVAL)
                for m in tree:
                    propagation.make_shared(self, m)
            self._connect_locked(mnt, vd)
            if parent.group is not None:
                self._propagate_locked(parent, point, mnt, {id(m) for m in tree})

    def umount_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        flags: int,
        ns: MountNamespace | None,
        root: VirtualDentry | None = None,
    ) -> None:
        """Unmounts the mount whose root pop names (umount2(2)).

        Raises:
            SyscallError: EPERM without CAP_SYS_ADMIN; EINVAL for bad flags,
                for a path that is not a mount's root or a mount of another
                namespace; EBUSY for a mount in use (not with MNT_DETACH).
        """
        if flags & ~(MS.MNT_FORCE | MS.MNT_DETACH | MS.MNT_EXPIRE | MS.UMOUNT_NOFOLLOW):
            raise SyscallError(errno.EINVAL)
        if flags & MS.MNT_EXPIRE and flags & (MS.MNT_FORCE | MS.MNT_DETACH):
            raise SyscallError(errno.EINVAL)
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        vd = self.get_dentry_at(t, creds, pop, GetDentryOptions())
        # Like LOOKUP_MOUNTPOINT: what is mounted on the final dentry (on
        # "." say) is the target.
        while (top := self.get_mount_at(vd.mount, vd.dentry)) is not None:
            vd = VirtualDentry(top, top.root)
        mnt = vd.mount
        if vd.dentry is not mnt.root or (ns is not None and mnt.ns is not ns):
            raise SyscallError(errno.EINVAL)
        if flags & MS.MNT_EXPIRE:
            # TODO(#5): expiry marks; a mount in use is EBUSY, an unused
            # one is only marked the first time (EAGAIN).
            raise SyscallError(errno.EAGAIN if not mnt.refs() else errno.EBUSY)
        with self.mu:
            if mnt.parent is None:
                # The namespace root: busy, as the caller's root is on it.
                raise SyscallError(errno.EINVAL if mnt.ns is None else errno.EBUSY)
            if root is not None and root.mount is mnt and not flags & MS.MNT_DETACH:
                raise SyscallError(errno.EBUSY)
            if not flags & MS.MNT_DETACH and (mnt.refs() or mnt.children):
                raise SyscallError(errno.EBUSY)
            doomed = list(propagation.subtree(mnt))
            doomed += self._propagated_umounts_locked(doomed, flags)
            for m in reversed(doomed):
                propagation.make_private(self, m)
                self._disconnect_locked(m)
                m.umounted = True
                m.ns = None
        for m in doomed:
            if m.refs() == 0:
                m.fs.dec_ref()

    def _propagated_umounts_locked(
        self, doomed: list[Mount], flags: int
    ) -> list[Mount]:
        """Returns the mounts unmounting doomed (a tree, parents first)
        takes with it: where each one's parent propagates to, the mount on
        the same dentry, unless something not going is mounted on it
        (propagate_umount).

        Raises:
            SyscallError: EBUSY if one is in use, without MNT_DETACH
                (propagate_mount_busy).
        """
        gone = {id(m) for m in doomed}
        out: list[Mount] = []
        # Children first, so that a copy's own copies are known to go
        # before the copy is looked at.
        for m in reversed(doomed):
            parent, point = m.parent, m.point
            if parent is None or point is None or parent.group is None:
                continue
            for target, _sender, _slave in propagation.receivers(parent):
                c = self._mounts_at.get((target, point))
                if c is None or id(c) in gone:
                    continue
                if any(id(k) not in gone for k in c.children):
                    continue
                if not flags & MS.MNT_DETACH and c.refs():
                    raise SyscallError(errno.EBUSY)
                gone.add(id(c))
                out.append(c)
        return out

    def pivot_root(
        self,
        t: Task | None,
        creds: Credentials,
        new_root_pop: PathOperation,
        put_old_pop: PathOperation,
        root: VirtualDentry,
    ) -> tuple[VirtualDentry, VirtualDentry]:
        """Makes the mount at new_root the namespace's root and moves the
        old root mount to put_old (pivot_root(2)).

        Args:
            root: the caller's root, which must be the root of a mount.

        Returns:
            (old root, new root) as VirtualDentries, for the caller to move
            every task whose root or working directory is the old root.

        Raises:
            SyscallError: EPERM, ENOTDIR, EINVAL, EBUSY as pivot_root(2)
                lists.
        """
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        new_root = self.get_dentry_at(
            t, creds, new_root_pop, GetDentryOptions(check_search_dir=True)
        )
        put_old = self.get_dentry_at(
            t, creds, put_old_pop, GetDentryOptions(check_search_dir=True)
        )
        with self.mu:
            new_mnt = new_root.mount
            root_mnt = root.mount
            if new_root.dentry.is_dead() or put_old.dentry.is_dead():
                raise SyscallError(errno.ENOENT)
            if new_mnt is root_mnt or put_old.mount is root_mnt:
                raise SyscallError(errno.EBUSY)
            if root.dentry is not root_mnt.root:
                raise SyscallError(errno.EINVAL)
            if new_root.dentry is not new_mnt.root or new_mnt.parent is None:
                raise SyscallError(errno.EINVAL)
            ns = root_mnt.ns
            if ns is None or new_mnt.ns is not ns:
                raise SyscallError(errno.EINVAL)
            # As pivot_root(2): no shared mount may be moved.
            if any(
                m is not None and m.group is not None
                for m in (put_old.mount, new_mnt.parent, root_mnt.parent)
            ):
                raise SyscallError(errno.EINVAL)
            # put_old must be reachable from new_root...
            if not put_old.mount.is_under(new_mnt) or (
                put_old.mount is new_mnt
                and not new_mnt.fs.is_descendant(new_mnt.root, put_old.dentry)
            ):
                raise SyscallError(errno.EINVAL)
            # ...and new_root from the current root.
            if not new_mnt.is_under(root_mnt):
                raise SyscallError(errno.EINVAL)
            # Unlike Linux, the namespace's root mount need not sit on
            # another mount: the sandbox's root has nothing below it.
            self._disconnect_locked(new_mnt)
            if root_mnt.parent is not None:
                self._disconnect_locked(root_mnt)
            ns.root = new_mnt
            new_mnt.ns = ns
            self._connect_locked(root_mnt, put_old)
        return VirtualDentry(root_mnt, root_mnt.root), VirtualDentry(
            new_mnt, new_mnt.root
        )

    def copy_mount_namespace(
        self, ns: MountNamespace
    ) -> tuple[MountNamespace, dict[int, Mount]]:
        """Returns a new namespace holding a copy of every mount of ns
        (copy_mnt_ns), with no reference taken on it.

        Copies keep their originals' propagation: a copy of a shared mount
        is a peer of it, a copy of a slave a slave of the same group, so
        shared mounts keep propagating between the two namespaces.

        Returns:
            The namespace, and the copy of each mount of ns by id(mount),
            to move roots and working directories over.
        """
        with self.mu:
            top, subs = self._copy_tree_locked(
                ns.root, ns.root.root, copy_unbindable=True
            )
            new_ns = MountNamespace(top, refs=0)
            for _orig, copy, parent_copy in subs:
                assert copy.point is not None
                self._connect_locked(copy, VirtualDentry(parent_copy, copy.point))
            copies = {id(ns.root): top}
            copies.update((id(orig), copy) for orig, copy, _p in subs)
        return new_ns, copies

    def release_mount_namespace(self, ns: MountNamespace) -> None:
        """Unmounts every mount of ns, which nothing uses any longer
        (put_mnt_ns); open files keep their mounts' filesystems."""
        with self.mu:
            doomed = self.mounts_of(ns)
            for m in reversed(doomed):
                propagation.make_private(self, m)
                self._disconnect_locked(m)
                m.umounted = True
                m.ns = None
        log.debug("vfs: mount namespace %d released", ns.ino)
        for m in doomed:
            if m.refs() == 0:
                m.fs.dec_ref()

    def mounts_of(self, ns: MountNamespace) -> list[Mount]:
        """Returns the mounts of ns, parents before children (for
        /proc/pid/mounts)."""
        with self.mu:
            out = [ns.root]
            i = 0
            while i < len(out):
                out.extend(out[i].children)
                i += 1
            return out
