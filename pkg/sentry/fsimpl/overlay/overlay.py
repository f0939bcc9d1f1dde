"""overlay: a writable upper filesystem over a read-only lower one, as
Linux's overlayfs merges them (Documentation/filesystems/overlayfs.rst).

The container's root is an overlay whose lower layer is the gofer mount of
the container's files and whose upper layer is a tmpfs: the application can
change anything, and every change lands in memory, never on the host.

- Lookup: a name is looked up in the upper directory, then (unless the upper
  file is a non-directory, the name is whited out or the directory is
  opaque) in the lower directory. Directories present in both are merged.
- Copy-up: before a lower file changes (open for writing, chmod, chown,
  utimes, truncate, xattrs, link, rename), it is copied to the upper layer
  with its attributes, after its parent directories (copy_up.py). A
  directory is copied without its entries, which keep coming from the lower
  directory.
- Removal of a name the lower layer has leaves a whiteout, so that the
  lower file stays hidden; a directory made where one was removed is opaque.
- Readdir merges the upper and lower entries, less whiteouts (directory.py).
- Rename moves the upper file; the moved file keeps its lower origin, so a
  renamed directory still shows its lower entries (unlike Linux without
  redirect_dir, which refuses with EXDEV).

Permissions are decided here, with the caller's credentials, against the
attributes of the file as the merged tree shows it; the layers are then
operated with the overlay's own credentials (all capabilities, the caller's
fs ids so that new files get the caller as owner).

All of the overlay changes under its one lock (mu), held across layer
operations; the layers' locks are taken inside it, never the other way.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.overlay import copy_up
from pkg.sentry.fsimpl.overlay.dentry import OverlayDentry
from pkg.sentry.fsimpl.overlay.directory import OverlayDirectoryFD, merged_entries
from pkg.sentry.fsimpl.overlay.regular_file import OverlayRegularFD
from pkg.sentry.fsimpl.pipefs.pipe import Pipe
from pkg.sentry.fsimpl.pipefs.pipefs import PipeFD
from pkg.sentry.kernel.credentials import (
    CAP_SYS_ADMIN,
    Credentials,
    root_credentials,
)
from pkg.sentry.vfs.dentry import INOTIFY_PATH_EVENT, Dentry, VirtualDentry
from pkg.sentry.vfs.device import BLOCK_DEVICE, CHAR_DEVICE
from pkg.sentry.vfs.filesystem import Filesystem, FilesystemType
from pkg.sentry.vfs.inode_attrs import setstat_events
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.options import (
    GetDentryOptions,
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    RenameOptions,
    SetStatOptions,
    SetXattrOptions,
)
from pkg.sentry.vfs.permissions import (
    MAY_EXEC,
    MAY_WRITE,
    apply_set_stat_mode_bits,
    check_mknod,
    check_open,
    check_search_dir,
    check_set_stat,
    check_xattr_permission,
    init_owner,
    may_create,
    may_delete,
)
from pkg.sentry.vfs.rename import check_rename_targets, may_rename
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.watches import Watches

if TYPE_CHECKING:
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.filesystem import GetFilesystemOptions
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# Inode numbers of files that exist only in the upper layer: the upper
# layer's numbers, moved out of the lower layer's range.
UPPER_INO_BASE = 1 << 62


@dataclass(frozen=True, slots=True)
class OverlayOptions:
    """OverlayOptions is the internal data of an overlay mount: the roots of
    its layers, each a mount of its own (usually attached nowhere)."""

    upper: VirtualDentry
    lower: VirtualDentry


class OverlayType(FilesystemType):
    """OverlayType makes overlays; only the sentry mounts them."""

    name = "overlay"

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        if not isinstance(opts.internal, OverlayOptions):
            raise SyscallError(errno.EINVAL)
        fs = OverlayFilesystem(vfs, self, opts.internal.upper, opts.internal.lower)
        return fs, fs.root


class Layer:
    """Layer is one layer's mount, and path operations relative to its
    dentries.

    A layer filesystem may offer two shortcuts that skip path resolution
    (the gofer filesystem does): layer_lookup(parent, name) returning the
    child dentry or None, and layer_statx(dentry). They make no permission
    checks, which the overlay makes itself.

    Attributes:
        lookup: the filesystem's layer_lookup, or None.
        statx: the filesystem's layer_statx, or None.
    """

    __slots__ = ("lookup", "mount", "root", "statx")

    def __init__(self, root: VirtualDentry) -> None:
        self.mount: Mount = root.mount
        self.root = root
        self.lookup = getattr(root.mount.fs, "layer_lookup", None)
        self.statx = getattr(root.mount.fs, "layer_statx", None)

    def vd(self, d: Dentry) -> VirtualDentry:
        """Returns the layer's VirtualDentry for d."""
        return VirtualDentry(self.mount, d)

    def child(self, parent: Dentry, name: bytes) -> PathOperation:
        """Names parent/name, not following a final symlink."""
        return PathOperation(
            root=self.root, start=self.vd(parent), path=name, follow=False
        )

    def here(self, d: Dentry) -> PathOperation:
        """Names d itself."""
        return PathOperation(root=self.root, start=self.vd(d), path=b"", follow=False)


class OverlayFilesystem(Filesystem):
    """OverlayFilesystem merges an upper and a lower filesystem.

    Attributes:
        mu: guards the merged tree and every dentry's layers.
        upper, lower: the layers.
        creds: the overlay's own credentials for layer operations.
        root: the root dentry.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        upper: VirtualDentry,
        lower: VirtualDentry,
    ) -> None:
        super().__init__(vfs, fs_type)
        self.mu = threading.RLock()
        self.upper = Layer(upper)
        self.lower = Layer(lower)
        self.creds = root_credentials()
        # Inode numbers of copied-up files, by upper inode number, so that
        # hard links made after copy-up share the number.
        self.origin_inos: dict[int, int] = {}
        # The inotify watches of upper files, by upper inode, shared by
        # their hard links (OverlayDentry.watches).
        self.link_watches: dict[object, Watches] = {}
        # The root exists in both layers from the start; it looks like the
        # lower one.
        lst = self.layer_stat(self.lower, lower.dentry)
        self.vfs.setstat_at(
            None,
            self.creds,
            self.upper.here(upper.dentry),
            SetStatOptions(
                mask=S.STATX_MODE
                | S.STATX_UID
                | S.STATX_GID
                | S.STATX_ATIME
                | S.STATX_MTIME,
                mode=lst.mode & S.S_IALLUGO,
                uid=lst.uid,
                gid=lst.gid,
                atime_ns=lst.atime_ns,
                mtime_ns=lst.mtime_ns,
            ),
        )
        self.root = OverlayDentry(
            self,
            None,
            b"",
            upper.dentry,
            lower.dentry,
            lst.mode,
            lst.uid,
            lst.gid,
            lst.ino,
        )

    def release(self) -> None:
        self.link_watches.clear()
        # The layers' mounts exist for this overlay alone.
        self.upper.mount.fs.dec_ref()
        self.lower.mount.fs.dec_ref()

    def mount_options(self) -> str:
        return "lowerdir=gofer,upperdir=memory"

    # Layer access. Every helper here runs with mu held.

    def layer_stat(self, layer: Layer, d: Dentry) -> S.Statx:
        """Returns the attributes of d in layer."""
        if layer.statx is not None:
            return layer.statx(d)
        return self.vfs.stat_at(None, self.creds, layer.here(d), S.STATX_BASIC_STATS)

    def layer_lookup(self, layer: Layer, parent: Dentry, name: bytes) -> Dentry | None:
        """Returns layer's dentry for parent/name, or None."""
        if layer.lookup is not None:
            return layer.lookup(parent, name)
        try:
            vd = self.vfs.get_dentry_at(
                None, self.creds, layer.child(parent, name), GetDentryOptions()
            )
        except SyscallError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return vd.dentry

    def maker_creds(self, creds: Credentials) -> Credentials:
        """Returns the credentials that make new upper files owned by the
        caller."""
        return self.creds.with_changes(
            fsuid=creds.fsuid, fsgid=creds.fsgid, groups=creds.groups
        )

    def upper_ino(self, st: S.Statx) -> int:
        """Returns the sandbox's inode number for an upper-layer file."""
        return self.upper_ino_of(st.ino)

    def upper_ino_of(self, ino: int) -> int:
        """Returns the sandbox's inode number for upper inode number ino."""
        return self.origin_inos.get(ino, UPPER_INO_BASE | ino)

    def _child_dentry(
        self,
        parent: OverlayDentry,
        name: bytes,
        upper: Dentry | None,
        lower: Dentry | None,
    ) -> OverlayDentry:
        if upper is not None:
            st = self.layer_stat(self.upper, upper)
            ino = self.upper_ino(st)
            if lower is not None:
                ino = self.layer_stat(self.lower, lower).ino
        else:
            assert lower is not None
            st = self.layer_stat(self.lower, lower)
            ino = st.ino
        d = OverlayDentry(
            self, parent, name, upper, lower, st.mode, st.uid, st.gid, ino
        )
        if upper is None:
            d.lower_stat = self._sandbox_stat(st, ino)
        parent.children[name] = d
        return d

    def _sandbox_stat(self, st: S.Statx, ino: int) -> S.Statx:
        return dataclasses.replace(
            st, ino=ino, dev_major=self.dev_major, dev_minor=self.dev_minor
        )

    def lower_has(self, parent: OverlayDentry, name: bytes) -> bool:
        """Reports whether parent's lower directory shows name (so that
        removing it needs a whiteout)."""
        if not parent.merges_lower():
            return False
        assert parent.lower is not None
        return self.layer_lookup(self.lower, parent.lower, name) is not None

    def lookup(self, parent: OverlayDentry, name: bytes) -> OverlayDentry | None:
        """Returns the merged tree's child called name, or None."""
        if name in parent.children:
            return parent.children[name]
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        if name in parent.whiteouts:
            parent.children[name] = None
            return None
        upper = None
        if parent.upper is not None:
            upper = self.layer_lookup(self.upper, parent.upper, name)
        lower = None
        if parent.merges_lower() and (upper is None or upper.is_dir()):
            assert parent.lower is not None
            lower = self.layer_lookup(self.lower, parent.lower, name)
            if upper is not None and lower is not None and not lower.is_dir():
                lower = None
        if upper is None and lower is None:
            parent.children[name] = None
            return None
        return self._child_dentry(parent, name, upper, lower)

    def readlink(self, d: OverlayDentry) -> bytes:
        """Returns a symlink's target from the layer holding it."""
        layer, ld = self.effective(d)
        return self.vfs.readlink_at(None, self.creds, layer.here(ld))

    def effective(self, d: OverlayDentry) -> tuple[Layer, Dentry]:
        """Returns the layer and dentry holding d's file."""
        if d.upper is not None:
            return self.upper, d.upper
        assert d.lower is not None
        return self.lower, d.lower

    def statx(self, d: OverlayDentry) -> S.Statx:
        """Returns d's attributes as the sandbox sees them."""
        # A lower-only file cannot change: the lower layer is read-only and
        # the sandbox's alone.
        st = d.lower_stat
        if st is not None and d.upper is None:
            return st
        with self.mu:
            layer, ld = self.effective(d)
            st = self.layer_stat(layer, ld)
        return self._sandbox_stat(st, d.ino)

    # Walking.

    def _step(self, rp: ResolvingPath, d: OverlayDentry) -> OverlayDentry:
        """Resolves rp's current component from directory d."""
        if not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        d.check_permissions(rp.creds, MAY_EXEC)
        reached = rp.handle_dots(d, d.parent)
        if reached is not None:
            return reached
        name = rp.component()
        child = self.lookup(d, name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        rp.check_mount(child)
        if child.file_type == S.S_IFLNK and rp.should_follow_symlink():
            rp.handle_symlink(self.readlink(child))
            return d
        rp.advance()
        return child

    @staticmethod
    def _start(rp: ResolvingPath) -> OverlayDentry:
        d = rp.start
        assert isinstance(d, OverlayDentry)
        return d

    def _resolve(self, rp: ResolvingPath) -> OverlayDentry:
        d = self._start(rp)
        while not rp.done():
            d = self._step(rp, d)
        if rp.must_be_dir() and not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        return d

    def _walk_parent(self, rp: ResolvingPath) -> OverlayDentry:
        d = self._start(rp)
        while not rp.done() and not rp.final():
            d = self._step(rp, d)
        if not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if not rp.done():
            d.check_permissions(rp.creds, MAY_EXEC)
        return d

    # Creation.

    def _prepare_create(
        self, rp: ResolvingPath, is_dir: bool, link_source: Mount | None = None
    ) -> OverlayDentry:
        """Walks to the directory where rp's last component is to be made
        and checks that it may be. Returns the directory, copied up."""
        if rp.done():
            raise SyscallError(errno.EEXIST)
        parent = self._walk_parent(rp)
        name = rp.component()
        if name in (b".", b".."):
            raise SyscallError(errno.EEXIST)
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        exists = self.lookup(parent, name) is not None
        may_create(rp, parent, parent, exists, is_dir, link_source)
        copy_up.copy_up(self, parent)
        return parent

    def _created(self, parent: OverlayDentry, name: bytes) -> OverlayDentry:
        """Makes the dentry of a file just created in parent's upper
        directory."""
        assert parent.upper is not None
        upper = self.layer_lookup(self.upper, parent.upper, name)
        if upper is None:
            raise SyscallError(errno.EIO)
        hid_lower = name in parent.whiteouts or self.lower_has(parent, name)
        parent.whiteouts.discard(name)
        d = self._child_dentry(parent, name, upper, None)
        # A directory made where a lower one was removed shows none of it.
        d.opaque = hid_lower and d.is_dir()
        d.inotify_with_parent(IN.IN_CREATE, 0, INOTIFY_PATH_EVENT)
        return d

    def mkdir_at(self, rp: ResolvingPath, opts: MkdirOptions) -> None:
        with self.mu:
            parent = self._prepare_create(rp, True)
            name = rp.component()
            assert parent.upper is not None
            self.vfs.mkdir_at(
                None,
                self.maker_creds(rp.creds),
                self.upper.child(parent.upper, name),
                opts,
            )
            self._created(parent, name)

    def mknod_at(self, rp: ResolvingPath, opts: MknodOptions) -> None:
        with self.mu:
            parent = self._prepare_create(rp, False)
            check_mknod(rp.creds, opts.mode, opts.dev_major, opts.dev_minor)
            name = rp.component()
            perm = init_owner(rp.creds, parent, opts.mode & S.S_IALLUGO, False)[0]
            assert parent.upper is not None
            self.vfs.mknod_at(
                None,
                self.maker_creds(rp.creds),
                self.upper.child(parent.upper, name),
                dataclasses.replace(opts, mode=opts.mode & S.S_IFMT | perm),
            )
            self._created(parent, name)

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        with self.mu:
            parent = self._prepare_create(rp, False)
            name = rp.component()
            assert parent.upper is not None
            self.vfs.symlink_at(
                None,
                self.maker_creds(rp.creds),
                self.upper.child(parent.upper, name),
                target,
            )
            self._created(parent, name)

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        with self.mu:
            parent = self._prepare_create(rp, False, old.mount)
            target = old.dentry
            assert isinstance(target, OverlayDentry)
            if target.is_dir():
                raise SyscallError(errno.EPERM)
            if target.is_dead() and target.upper is None:
                # A deleted upper file may still be linked (O_TMPFILE): the
                # upper layer decides.
                raise SyscallError(errno.ENOENT)
            name = rp.component()
            copy_up.copy_up(self, target)
            assert parent.upper is not None and target.upper is not None
            self.vfs.link_at(
                None,
                self.creds,
                self.upper.here(target.upper),
                self.upper.child(parent.upper, name),
            )
            # The link count changed (fsnotify_link's IN_ATTRIB).
            target.inotify_inode(IN.IN_ATTRIB)
            self._created(parent, name)

    # Removal.

    def _forget(self, parent: OverlayDentry, name: bytes, whiteout: bool) -> None:
        """Records that name left parent."""
        parent.children[name] = None
        if whiteout:
            parent.whiteouts.add(name)

    def unlink_at(self, rp: ResolvingPath) -> None:
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EISDIR)
            parent = self._walk_parent(rp)
            name = rp.component()
            if name in (b".", b".."):
                raise SyscallError(errno.EISDIR)
            rp.mount.check_begin_write()
            child = self.lookup(parent, name)
            if child is None:
                raise SyscallError(errno.ENOENT)
            if rp.must_be_dir():
                raise SyscallError(errno.EISDIR if child.is_dir() else errno.ENOTDIR)
            may_delete(rp.creds, parent, child, child.uid, is_dir=False)
            if child.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            whiteout = self.lower_has(parent, name)
            gone = self._last_name(child)
            if child.upper is not None:
                assert parent.upper is not None
                self.vfs.unlink_at(
                    None, self.creds, self.upper.child(parent.upper, name)
                )
            self.vfs.delete_dentry(child)
            self._forget(parent, name, whiteout)
            # The file's own events first, as d_delete_notify orders them.
            child.inotify_link_count(gone)
            if gone:
                child.forget_watches()
            child.inotify_with_parent(IN.IN_DELETE, 0, INOTIFY_PATH_EVENT)

    def _last_name(self, d: OverlayDentry) -> bool:
        """Reports whether d is its file's only name: an upper file's links
        are counted by the upper layer; a lower file's other links are
        other files in the overlay, as in Linux's without an index."""
        if d.upper is None or d.is_dir():
            return True
        return self.layer_stat(self.upper, d.upper).nlink <= 1

    def rmdir_at(self, rp: ResolvingPath) -> None:
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EBUSY)
            parent = self._walk_parent(rp)
            name = rp.component()
            if name == b".":
                raise SyscallError(errno.EINVAL)
            if name == b"..":
                raise SyscallError(errno.ENOTEMPTY)
            rp.mount.check_begin_write()
            child = self.lookup(parent, name)
            if child is None:
                raise SyscallError(errno.ENOENT)
            may_delete(rp.creds, parent, child, child.uid, is_dir=True)
            if child.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            if merged_entries(self, child):
                raise SyscallError(errno.ENOTEMPTY)
            whiteout = self.lower_has(parent, name)
            if child.upper is not None:
                assert parent.upper is not None
                self.vfs.rmdir_at(
                    None, self.creds, self.upper.child(parent.upper, name)
                )
            self.vfs.delete_dentry(child)
            child.children.clear()
            self._forget(parent, name, whiteout)
            child.inotify_link_count(True)
            child.inotify_with_parent(IN.IN_DELETE, 0, INOTIFY_PATH_EVENT)

    def rename_at(
        self,
        rp: ResolvingPath,
        old_parent: VirtualDentry,
        old_name: bytes,
        opts: RenameOptions,
    ) -> None:
        flags = opts.flags
        exchange = bool(flags & F.RENAME_EXCHANGE)
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EBUSY)
            np = self._walk_parent(rp)
            new_name = rp.component()
            if old_parent.mount is not rp.mount:
                raise SyscallError(errno.EXDEV)
            if flags & F.RENAME_WHITEOUT:
                # As Linux's overlayfs: whiteouts are its own business.
                raise SyscallError(errno.EINVAL)
            if new_name in (b".", b".."):
                raise SyscallError(errno.EBUSY)
            if len(new_name) > FS.NAME_MAX or len(old_name) > FS.NAME_MAX:
                raise SyscallError(errno.ENAMETOOLONG)
            rp.mount.check_begin_write()
            op = old_parent.dentry
            assert isinstance(op, OverlayDentry)
            if not op.is_dir():
                raise SyscallError(errno.ENOTDIR)
            renamed = self.lookup(op, old_name)
            if renamed is None:
                raise SyscallError(errno.ENOENT)
            replaced = self.lookup(np, new_name)
            check_rename_targets(rp, opts, op, renamed, np, replaced)
            if replaced is renamed or self._same_upper_file(renamed, replaced):
                # Two names of one file: rename(2) does nothing.
                return
            may_rename(rp.creds, opts, op, renamed, np, replaced, _self_attrs)
            if (
                not exchange
                and replaced is not None
                and replaced.is_dir()
                and merged_entries(self, replaced)
            ):
                raise SyscallError(errno.ENOTEMPTY)
            if renamed.is_mountpoint() or (
                replaced is not None and replaced.is_mountpoint()
            ):
                raise SyscallError(errno.EBUSY)
            self._rename(op, old_name, renamed, np, new_name, replaced, exchange)

    def _same_upper_file(self, a: OverlayDentry, b: OverlayDentry | None) -> bool:
        """Reports whether a and b are hard links of one upper file."""
        if b is None or a.upper is None or b.upper is None or a.is_dir():
            return False
        return (
            self.layer_stat(self.upper, a.upper).ino
            == self.layer_stat(self.upper, b.upper).ino
        )

    def _rename(
        self,
        op: OverlayDentry,
        old_name: bytes,
        renamed: OverlayDentry,
        np: OverlayDentry,
        new_name: bytes,
        replaced: OverlayDentry | None,
        exchange: bool,
    ) -> None:
        """Renames in the upper layer, copying up first. Precondition: mu
        held and every check made."""
        copy_up.copy_up(self, renamed)
        copy_up.copy_up(self, np)
        if exchange:
            assert replaced is not None
            copy_up.copy_up(self, replaced)
        assert op.upper is not None and np.upper is not None
        upper_flags = F.RENAME_EXCHANGE if exchange else 0
        if replaced is not None and replaced.upper is None and not exchange:
            # Only the lower layer has the name: nothing to replace above.
            upper_flags = F.RENAME_NOREPLACE
        old_whiteout = not exchange and self.lower_has(op, old_name)
        replaced_gone = replaced is not None and self._last_name(replaced)
        self.vfs.rename_at(
            None,
            self.creds,
            self.upper.child(op.upper, old_name),
            self.upper.child(np.upper, new_name),
            RenameOptions(flags=upper_flags),
        )
        self.vfs.rename_dentry(renamed, replaced, exchange)
        cookie = self.vfs.new_inotify_cookie()
        renamed.inotify_with_parent(IN.IN_MOVED_FROM, cookie, INOTIFY_PATH_EVENT)
        if exchange:
            assert replaced is not None
            replaced.parent, replaced.name = op, old_name
            op.children[old_name] = replaced
        else:
            self._forget(op, old_name, old_whiteout)
            if replaced is not None:
                replaced.children.clear()
        hid_lower = new_name in np.whiteouts or (
            not exchange and self.lower_has(np, new_name)
        )
        np.whiteouts.discard(new_name)
        renamed.parent, renamed.name = np, new_name
        np.children[new_name] = renamed
        if renamed.is_dir() and renamed.lower is None and hid_lower:
            renamed.opaque = True
        renamed.inotify_with_parent(IN.IN_MOVED_TO, cookie, INOTIFY_PATH_EVENT)
        renamed.inotify_with_parent(IN.IN_MOVE_SELF)
        if replaced is not None and not exchange:
            replaced.inotify_link_count(replaced_gone, replaced=True)
            if replaced_gone:
                replaced.forget_watches()

    # Attributes.

    def setstat(
        self,
        t: object,
        creds: Credentials,
        d: OverlayDentry,
        opts: SetStatOptions,
        via_fd: bool,
    ) -> None:
        """Checks a change of attributes with the caller's credentials,
        copies the file up and applies the change there. Precondition: mu
        held."""
        mask = opts.mask
        if not mask:
            return
        check_set_stat(t, creds, opts, d.mode, d.uid, d.gid, via_fd)  # type: ignore[arg-type]
        perm = apply_set_stat_mode_bits(creds, opts, d.mode, d.gid)
        if perm != d.mode & S.S_IALLUGO and d.file_type != S.S_IFLNK:
            # The upper layer works with the overlay's capabilities and would
            # keep set-ID bits the caller's change drops: say so explicitly.
            opts = dataclasses.replace(opts, mask=mask | S.STATX_MODE, mode=perm)
        truncate_all = mask & S.STATX_SIZE and opts.size == 0
        copy_up.copy_up(self, d, with_data=not truncate_all)
        assert d.upper is not None
        self.vfs.setstat_at(None, self.creds, self.upper.here(d.upper), opts)
        st = self.layer_stat(self.upper, d.upper)
        with d.attr_mu:
            d.mode, d.uid, d.gid = st.mode, st.uid, st.gid
        d.inotify_with_parent(setstat_events(opts))

    def _check_xattr(
        self, creds: Credentials, d: OverlayDentry, name: bytes, write: bool
    ) -> None:
        """Checks xattr access as fs/xattr.c does, with the caller's
        credentials (the layers see the overlay's)."""
        if not name or len(name) > FS.XATTR_NAME_MAX:
            raise SyscallError(errno.ERANGE)
        check_xattr_permission(creds, d, name, write)

    # Path operations.

    def get_dentry_at(self, rp: ResolvingPath, opts: GetDentryOptions) -> Dentry:
        with self.mu:
            d = self._resolve(rp)
            if opts.check_search_dir:
                check_search_dir(rp.creds, d, d)
            return d

    def get_parent_dentry_at(self, rp: ResolvingPath) -> Dentry:
        with self.mu:
            return self._walk_parent(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        with self.mu:
            d = self._resolve(rp)
        if ats & MAY_WRITE and d.file_type in (S.S_IFREG, S.S_IFDIR, S.S_IFLNK):
            rp.mount.check_begin_write()
        d.check_permissions(rp.creds, ats)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        with self.mu:
            d = self._resolve(rp)
            if d.file_type != S.S_IFLNK:
                raise SyscallError(errno.EINVAL)
            return self.readlink(d)

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        with self.mu:
            d = self._resolve(rp)
        return self.statx(d)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        with self.mu:
            d = self._resolve(rp)
            if opts.mask:
                rp.mount.check_begin_write()
            self.setstat(rp.task, rp.creds, d, opts, via_fd=False)

    def statfs_at(self, rp: ResolvingPath) -> FS.Statfs:
        with self.mu:
            self._resolve(rp)
            st = self.vfs.statfs_at(
                None, self.creds, self.upper.here(self.upper.root.dentry)
            )
        return dataclasses.replace(st, type=FS.OVERLAYFS_SUPER_MAGIC)

    def listxattr_at(self, rp: ResolvingPath) -> list[bytes]:
        with self.mu:
            d = self._resolve(rp)
            layer, ld = self.effective(d)
            names = self.vfs.listxattr_at(None, self.creds, layer.here(ld))
        if rp.creds.has_capability(CAP_SYS_ADMIN):
            return names
        return [n for n in names if not n.startswith(FS.XATTR_TRUSTED_PREFIX)]

    def getxattr_at(self, rp: ResolvingPath, name: bytes) -> bytes:
        with self.mu:
            d = self._resolve(rp)
            self._check_xattr(rp.creds, d, name, write=False)
            layer, ld = self.effective(d)
            return self.vfs.getxattr_at(None, self.creds, layer.here(ld), name)

    def setxattr_at(self, rp: ResolvingPath, opts: SetXattrOptions) -> None:
        with self.mu:
            d = self._resolve(rp)
            rp.mount.check_begin_write()
            self._check_xattr(rp.creds, d, opts.name, write=True)
            copy_up.copy_up(self, d)
            assert d.upper is not None
            self.vfs.setxattr_at(None, self.creds, self.upper.here(d.upper), opts)

    def removexattr_at(self, rp: ResolvingPath, name: bytes) -> None:
        with self.mu:
            d = self._resolve(rp)
            rp.mount.check_begin_write()
            self._check_xattr(rp.creds, d, name, write=True)
            copy_up.copy_up(self, d)
            assert d.upper is not None
            self.vfs.removexattr_at(None, self.creds, self.upper.here(d.upper), name)

    def bound_endpoint_at(self, rp: ResolvingPath) -> object:
        with self.mu:
            d = self._resolve(rp)
            if d.is_dir():
                raise SyscallError(errno.ECONNREFUSED)
            d.check_permissions(rp.creds, MAY_WRITE)
            layer, ld = self.effective(d)
            return self.vfs.bound_endpoint_at(None, self.creds, layer.here(ld))

    # Opening.

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        with self.mu:
            if flags & F.O_TMPFILE == F.O_TMPFILE:
                return self._open_tmpfile(rp, opts)
            if flags & F.O_CREAT and not flags & F.O_PATH:
                d, created = self._open_create(rp, opts)
            else:
                d, created = self._resolve(rp), False
            if not created and not flags & F.O_PATH:
                if flags & F.O_DIRECTORY and not d.is_dir():
                    raise SyscallError(errno.ENOTDIR)
                check_open(
                    rp.creds, rp.mount, flags, opts.for_exec, d.mode, d.uid, d.gid
                )
            vd = VirtualDentry(rp.mount, d)
            if flags & F.O_PATH:
                if flags & F.O_DIRECTORY and not d.is_dir():
                    raise SyscallError(errno.ENOTDIR)
                return OpathFD(vd, flags)
            kind = d.file_type
            if kind == S.S_IFDIR:
                return OverlayDirectoryFD(d, flags, vd)
            if kind == S.S_IFREG:
                return OverlayRegularFD.open(d, flags, vd, created)
            if kind == S.S_IFIFO:
                if d.pipe is None:
                    d.pipe = Pipe(named=True)
                pipe = d.pipe
        if kind == S.S_IFIFO:
            # Opening a FIFO may block: mu is not held.
            seen = pipe.open_end(rp.task, flags)
            return PipeFD(pipe, flags, vd, seen, d.locks)
        if kind in (S.S_IFCHR, S.S_IFBLK):
            st = self.statx(d)
            return self.vfs.open_device_special_file(
                rp.task,
                vd,
                BLOCK_DEVICE if kind == S.S_IFBLK else CHAR_DEVICE,
                st.rdev_major,
                st.rdev_minor,
                opts,
            )
        if kind == S.S_IFSOCK:
            raise SyscallError(errno.ENXIO)
        raise SyscallError(errno.ELOOP)

    def _open_tmpfile(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        """Makes an unnamed regular file in the upper copy of the directory
        rp names (O_TMPFILE). Precondition: mu held."""
        d = self._resolve(rp)
        if not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        # O_TMPFILE makes a file in directory d.
        may_create(rp, d, d, exists=False, is_dir=True)
        copy_up.copy_up(self, d)
        assert d.upper is not None
        perm = init_owner(rp.creds, d, opts.mode & S.S_IALLUGO, False)[0]
        layer = self.vfs.open_at(
            None,
            self.maker_creds(rp.creds),
            self.upper.here(d.upper),
            dataclasses.replace(opts, mode=perm),
        )
        assert layer.vd is not None
        upper = layer.vd.dentry
        st = self.layer_stat(self.upper, upper)
        tmp = OverlayDentry(
            self,
            d,
            b"#%d" % st.ino,
            upper,
            None,
            st.mode,
            st.uid,
            st.gid,
            self.upper_ino(st),
        )
        tmp.set_dead()
        return OverlayRegularFD(
            tmp, opts.flags, VirtualDentry(rp.mount, tmp), layer, on_upper=True
        )

    def _open_create(
        self, rp: ResolvingPath, opts: OpenOptions
    ) -> tuple[OverlayDentry, bool]:
        """Resolves rp for O_CREAT, creating a regular file in the upper
        layer when the last component does not exist."""
        flags = opts.flags
        if rp.done():
            d = self._start(rp)
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            if d.is_dir():
                raise SyscallError(errno.EISDIR)
            return d, False
        while True:
            parent = self._walk_parent(rp)
            name = rp.component()
            if name in (b".", b"..") or rp.must_be_dir():
                raise SyscallError(errno.EISDIR)
            if len(name) > FS.NAME_MAX:
                raise SyscallError(errno.ENAMETOOLONG)
            child = self.lookup(parent, name)
            if child is None:
                may_create(rp, parent, parent, exists=False, is_dir=False)
                copy_up.copy_up(self, parent)
                assert parent.upper is not None
                perm = init_owner(rp.creds, parent, opts.mode & S.S_IALLUGO, False)[0]
                self.vfs.mknod_at(
                    None,
                    self.maker_creds(rp.creds),
                    self.upper.child(parent.upper, name),
                    MknodOptions(S.S_IFREG | perm),
                )
                return self._created(parent, name), True
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            rp.check_mount(child)
            if child.file_type == S.S_IFLNK:
                if rp.should_follow_symlink():
                    rp.handle_symlink(self.readlink(child))
                    rp.start = parent
                    continue
                raise SyscallError(errno.ELOOP)
            if child.is_dir():
                raise SyscallError(errno.EISDIR)
            rp.advance()
            return child, False


def _self_attrs(d: OverlayDentry) -> OverlayDentry:
    """Returns d, which holds its file's attributes."""
    return d
