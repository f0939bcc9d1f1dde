"""VirtualFilesystem: the sentry's virtual filesystem (fs/namei.c,
fs/namespace.c, fs/open.c).

Overview of the API (what other parts of the sentry build on)
==============================================================

Objects (one concept per module):

- `VirtualFilesystem` (this module; `kernel.vfs`): the mount table, the
  registry of filesystem types and of devices, and every path operation.
- `Mount`, `MountNamespace` (mount.py): a filesystem subtree attached at a
  mount point; a tree of mounts. A task's namespace is `t.fs.mount_ns`.
  The mount operations (mount_at, bind_at, move_mount, umount_at,
  pivot_root, change_propagation, copy_mount_namespace) are MountTable's
  (mount_table.py), a base class of VirtualFilesystem; shared and slave
  mounts are propagation.py's; nsfs.py has namespace inode numbers and
  the files of /proc/pid/ns.
- `Dentry` (dentry.py): base class of every filesystem's dentries
  (parent_dentry, dentry_name, is_dir, inc_ref/dec_ref, the inotify hook
  inotify_with_parent); `VirtualDentry(mount, dentry)` names a file
  through one mount.
- `Filesystem`, `FilesystemType` (filesystem.py): the interface a
  filesystem implements: path operations taking a ResolvingPath
  (open_at, mkdir_at, mknod_at, symlink_at, link_at, rename_at, rmdir_at,
  unlink_at, readlink_at, stat_at, setstat_at, statfs_at, access_at,
  get_dentry_at, get_parent_dentry_at, the xattr operations,
  bound_endpoint_at); `FilesystemType.get_filesystem` is what mount(2)
  calls. Types register with `register_filesystem_type(name, type, opts)`.
- `ResolvingPath`, `PathOperation` (resolving_path.py): one path
  resolution; crossing mounts, symlinks (MAXSYMLINKS), `..` and openat2's
  RESOLVE_* flags are handled there and here.
- `FileDescription` (file_description.py): an open file (read, write,
  pread, pwrite, seek, iterate_dirents, stat, setstat, statfs, allocate,
  sync, ioctl, xattrs, readiness/event_register, file_locks,
  configure_mmap (tmpfs files are their own Mappable), on_close, notify
  for inotify). `vd` is its VirtualDentry; OpathFD (opath.py) is an
  O_PATH file; Dirent (dirent.py) is what iterate_dirents yields.
- `InodeAttrs` (inode_attrs.py): mode/owner/times of in-memory inodes with
  Linux's chmod/chown/utimes/truncate rules, for filesystems to reuse.
- `FileLocks` (lock.py): POSIX byte-range, OFD and flock locks.
- permissions.py: generic_check_permissions, check_set_stat,
  check_delete_sticky, check_open (mode/owner/group/capabilities).
- `Device` (device.py): what opening a device node does; registered here
  with register_device(kind, major, minor, device).
- task_path.py: the glue for system calls: `path_operation(t, dirfd,
  path, ...)` builds a PathOperation from a task's root, working directory
  or dirfd; `open_executable(t, dirfd, path, flags)` opens a file for
  execve.

Internal filesystems (pipefs now; sockfs and anon_inodefs later) keep a
disconnected mount in `internal_mounts`.

Calling convention: every path operation here takes the task (or None
inside the sentry), its credentials and a PathOperation, and raises
SyscallError with Linux's errno. VirtualDentries returned by
get_dentry_at carry no reference; a caller that keeps one (a working
directory) calls inc_ref.

Locking: each Filesystem has its own locks; `VirtualFilesystem.mu`
guards the mount table and is taken after a filesystem's locks, never
before (mount operations resolve their paths first, then take `mu`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import fs as FS
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import mount as MS
from pkg.abi.linux.stat import STATX_MNT_ID, Statx
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
from pkg.sentry.vfs.device import Device, RegisterDeviceOptions
from pkg.sentry.vfs.filesystem import (
    Filesystem,
    FilesystemType,
    GetFilesystemOptions,
    RegisterFilesystemTypeOptions,
)
from pkg.sentry.vfs.mount import Mount
from pkg.sentry.vfs.mount_table import MountTable
from pkg.sentry.vfs.options import (
    GetDentryOptions,
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    RenameOptions,
    SetStatOptions,
    SetXattrOptions,
)
from pkg.sentry.vfs.resolving_path import (
    PathOperation,
    ResolveRedirect,
    ResolvingPath,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.mount import MountNamespace

log = logging.getLogger(__name__)

_T = TypeVar("_T")


_STATFS_FLAGS_BY_MOUNT = (
    (MS.MS_RDONLY, FS.ST_RDONLY),
    (MS.MS_NOSUID, FS.ST_NOSUID),
    (MS.MS_NODEV, FS.ST_NODEV),
    (MS.MS_NOEXEC, FS.ST_NOEXEC),
    (MS.MS_NOATIME, FS.ST_NOATIME),
    (MS.MS_NODIRATIME, FS.ST_NODIRATIME),
    (MS.MS_RELATIME, FS.ST_RELATIME),
    (MS.MS_NOSYMFOLLOW, FS.ST_NOSYMFOLLOW),
)


def with_mount_id(st: Statx, mount: Mount) -> Statx:
    """Returns st with the mount id statx(2) reports for mount."""
    return dataclasses.replace(st, mnt_id=mount.id, mask=st.mask | STATX_MNT_ID)


def with_mount_flags(st: FS.Statfs, mount: Mount) -> FS.Statfs:
    """Returns st with the f_flags statfs(2) reports through mount
    (calculate_f_flags)."""
    flags = FS.ST_VALID
    for ms, st_flag in _STATFS_FLAGS_BY_MOUNT:
        if mount.flags & ms:
            flags |= st_flag
    if mount.fs.read_only:
        flags |= FS.ST_RDONLY
    return dataclasses.replace(st, flags=flags)


class VirtualFilesystem(MountTable):
    """VirtualFilesystem is the sandbox's filesystem state. Its mount
    operations are MountTable's (mount_table.py).

    Attributes:
        mu: guards the mount table and every Mount's tree fields.
    """

    def __init__(self) -> None:
        self.mu = threading.RLock()
        self._fs_types: dict[
            str, tuple[FilesystemType, RegisterFilesystemTypeOptions]
        ] = {}
        self._devices: dict[
            tuple[int, int, int], tuple[Device, RegisterDeviceOptions]
        ] = {}
        self._anon_minors = itertools.count(1)
        self._anon_minor_mu = threading.Lock()
        # Mounts of the sentry's internal filesystems (pipefs, sockfs,
        # anon_inodefs) by name, created by those filesystems on first use.
        self.internal_mounts: dict[str, Mount] = {}
        self._inotify_cookies = itertools.count(1)
        MountTable.__init__(self)

    # Filesystem types and devices.

    def register_filesystem_type(
        self,
        name: str,
        fs_type: FilesystemType,
        opts: RegisterFilesystemTypeOptions | None = None,
    ) -> None:
        """Makes fs_type mountable by name."""
        with self.mu:
            if name in self._fs_types:
                raise ValueError(f"filesystem type {name!r} registered twice")
            self._fs_types[name] = (fs_type, opts or RegisterFilesystemTypeOptions())

    def filesystem_types(self) -> list[tuple[str, RegisterFilesystemTypeOptions]]:
        """Returns the registered types with their options, by name."""
        with self.mu:
            return sorted((n, o) for n, (_t, o) in self._fs_types.items())

    def new_inotify_cookie(self) -> int:
        """Returns a fresh cookie tying an IN_MOVED_FROM to its IN_MOVED_TO."""
        return next(self._inotify_cookies) & 0xFFFFFFFF

    def get_anonymous_device_minor(self) -> int:
        """Returns a fresh minor number under major 0 for a filesystem's
        st_dev (get_anon_bdev)."""
        with self._anon_minor_mu:
            return next(self._anon_minors)

    def register_device(
        self,
        kind: int,
        major: int,
        minor: int,
        dev: Device,
        opts: RegisterDeviceOptions | None = None,
    ) -> None:
        """Makes device nodes numbered (major, minor) of kind (CHAR_DEVICE
        or BLOCK_DEVICE) open through dev."""
        with self.mu:
            key = (kind, major, minor)
            if key in self._devices:
                raise ValueError(f"device {key} registered twice")
            self._devices[key] = (dev, opts or RegisterDeviceOptions())

    def registered_devices(self) -> list[tuple[int, int, str]]:
        """Returns (kind, major, group name) of each major number with a
        named group, for /proc/devices."""
        with self.mu:
            out = {
                (kind, major, opts.group_name)
                for (kind, major, _minor), (_d, opts) in self._devices.items()
                if opts.group_name
            }
        return sorted(out)

    def open_device_special_file(
        self,
        t: Task | None,
        vd: VirtualDentry,
        kind: int,
        major: int,
        minor: int,
        opts: OpenOptions,
    ) -> FileDescription:
        """Opens the device node vd numbered (major, minor).

        Raises:
            SyscallError: ENXIO if no such device exists.
        """
        entry = self._devices.get((kind, major, minor))
        if entry is None:
            raise SyscallError(errno.ENXIO)
        return entry[0].open(t, vd, opts)

    def new_filesystem(
        self, creds: Credentials, fs_type_name: str, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        """Creates a filesystem of a registered type.

        Raises:
            SyscallError: ENODEV for an unknown type, or the type's error.
        """
        entry = self._fs_types.get(fs_type_name)
        if entry is None:
            raise SyscallError(errno.ENODEV)
        return entry[0].get_filesystem(self, creds, opts)

    # Deletion and renaming: filesystems call these, under their own
    # locks, right before they remove or replace a name.

    def delete_dentry(self, d: Dentry) -> None:
        """Marks d deleted, refusing a mount point.

        Raises:
            SyscallError: EBUSY if a mount sits on d.
        """
        with self.mu:
            if d.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            d.set_dead()

    def rename_dentry(self, src: Dentry, dst: Dentry | None, exchange: bool) -> None:
        """Checks that a rename may move src and replace (or exchange with)
        dst, and marks a replaced dst deleted.

        Raises:
            SyscallError: EBUSY if a mount sits on either.
        """
        with self.mu:
            if src.is_mountpoint() or (dst is not None and dst.is_mountpoint()):
                raise SyscallError(errno.EBUSY)
            if dst is not None and not exchange:
                dst.set_dead()

    # Path resolution driver.

    def _run(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        op: Callable[[Filesystem, ResolvingPath], _T],
    ) -> _T:
        rp = ResolvingPath(self, creds, t, pop)
        while True:
            try:
                return op(rp.mount.fs, rp)
            except ResolveRedirect as e:
                rp.redirect(e)

    # Path operations.

    def get_dentry_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: GetDentryOptions,
    ) -> VirtualDentry:
        """Returns the file pop names (with no reference taken)."""
        return self._run(
            t,
            creds,
            pop,
            lambda fs, rp: VirtualDentry(rp.mount, fs.get_dentry_at(rp, opts)),
        )

    def get_parent_dentry_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation
    ) -> tuple[VirtualDentry, bytes | None]:
        """Returns the directory holding the file pop names, and the last
        component of the path (None if the path has none, like "/")."""

        def op(fs: Filesystem, rp: ResolvingPath) -> tuple[VirtualDentry, bytes | None]:
            d = fs.get_parent_dentry_at(rp)
            return VirtualDentry(rp.mount, d), None if rp.done() else rp.component()

        return self._run(t, creds, pop, op)

    def open_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: OpenOptions,
    ) -> FileDescription:
        """Opens (or creates) the file pop names (open(2))."""
        f = self._run(t, creds, pop, lambda fs, rp: fs.open_at(rp, opts))
        if f.vd is not None and not f.is_path:
            f.vd.dentry.inotify_with_parent(IN.IN_OPEN)
        return f

    def access_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation, ats: int
    ) -> None:
        """Checks access(2) permissions."""
        self._run(t, creds, pop, lambda fs, rp: fs.access_at(rp, ats))

    def mkdir_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: MkdirOptions,
    ) -> None:
        """Creates a directory (mkdir(2))."""
        self._run(t, creds, pop, lambda fs, rp: fs.mkdir_at(rp, opts))

    def mknod_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: MknodOptions,
    ) -> None:
        """Creates a node (mknod(2))."""
        self._run(t, creds, pop, lambda fs, rp: fs.mknod_at(rp, opts))

    def symlink_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation, target: bytes
    ) -> None:
        """Creates a symbolic link (symlink(2))."""
        self._run(t, creds, pop, lambda fs, rp: fs.symlink_at(rp, target))

    def link_at(
        self,
        t: Task | None,
        creds: Credentials,
        old: PathOperation,
        new: PathOperation,
    ) -> None:
        """Creates a hard link new to the file old names (link(2))."""
        old_vd = self.get_dentry_at(t, creds, old, GetDentryOptions())
        self._run(t, creds, new, lambda fs, rp: fs.link_at(rp, old_vd))

    def rename_at(
        self,
        t: Task | None,
        creds: Credentials,
        old: PathOperation,
        new: PathOperation,
        opts: RenameOptions,
    ) -> None:
        """Renames old to new (rename(2), renameat2(2))."""

        def parent_op(
            fs: Filesystem, rp: ResolvingPath
        ) -> tuple[VirtualDentry, bytes | None, bool]:
            d = fs.get_parent_dentry_at(rp)
            name = None if rp.done() else rp.component()
            return VirtualDentry(rp.mount, d), name, rp.must_be_dir()

        old_parent, old_name, old_slash = self._run(t, creds, old, parent_op)
        if old_name is None or old_name in (b".", b".."):
            raise SyscallError(errno.EBUSY)
        opts = RenameOptions(opts.flags, old_must_be_dir=old_slash)
        self._run(
            t,
            creds,
            new,
            lambda fs, rp: fs.rename_at(rp, old_parent, old_name, opts),
        )

    def rmdir_at(self, t: Task | None, creds: Credentials, pop: PathOperation) -> None:
        """Removes an empty directory (rmdir(2))."""
        self._run(t, creds, pop, lambda fs, rp: fs.rmdir_at(rp))

    def unlink_at(self, t: Task | None, creds: Credentials, pop: PathOperation) -> None:
        """Removes a name (unlink(2))."""
        self._run(t, creds, pop, lambda fs, rp: fs.unlink_at(rp))

    def readlink_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation
    ) -> bytes:
        """Returns a symbolic link's target (readlink(2))."""
        return self._run(t, creds, pop, lambda fs, rp: fs.readlink_at(rp))

    def stat_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation, mask: int
    ) -> Statx:
        """Returns a file's attributes (stat(2), statx(2)), with the mount id
        of the mount it was found through."""
        return self._run(
            t, creds, pop, lambda fs, rp: with_mount_id(fs.stat_at(rp, mask), rp.mount)
        )

    def setstat_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: SetStatOptions,
    ) -> None:
        """Changes a file's attributes (chmod, chown, truncate, utimes)."""
        self._run(t, creds, pop, lambda fs, rp: fs.setstat_at(rp, opts))

    def statfs_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation
    ) -> FS.Statfs:
        """Returns statfs(2) for the filesystem holding a file, with the
        flags of the mount it was found through."""
        return self._run(
            t, creds, pop, lambda fs, rp: with_mount_flags(fs.statfs_at(rp), rp.mount)
        )

    def listxattr_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation
    ) -> list[bytes]:
        """Returns the names of a file's extended attributes."""
        return self._run(t, creds, pop, lambda fs, rp: fs.listxattr_at(rp))

    def getxattr_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation, name: bytes
    ) -> bytes:
        """Returns an extended attribute's value."""
        return self._run(t, creds, pop, lambda fs, rp: fs.getxattr_at(rp, name))

    def setxattr_at(
        self,
        t: Task | None,
        creds: Credentials,
        pop: PathOperation,
        opts: SetXattrOptions,
    ) -> None:
        """Sets an extended attribute."""
        self._run(t, creds, pop, lambda fs, rp: fs.setxattr_at(rp, opts))

    def removexattr_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation, name: bytes
    ) -> None:
        """Removes an extended attribute."""
        self._run(t, creds, pop, lambda fs, rp: fs.removexattr_at(rp, name))

    def bound_endpoint_at(
        self, t: Task | None, creds: Credentials, pop: PathOperation
    ) -> object:
        """Returns the Unix socket endpoint bound at a path (connect(2))."""
        return self._run(t, creds, pop, lambda fs, rp: fs.bound_endpoint_at(rp))

    # The same operations on a VirtualDentry itself (an open file's), as
    # AT_EMPTY_PATH does.

    @staticmethod
    def _here(vd: VirtualDentry) -> PathOperation:
        return PathOperation(root=vd, start=vd, path=b"", follow=False)

    def stat_vd(
        self, t: Task | None, creds: Credentials, vd: VirtualDentry, mask: int
    ) -> Statx:
        """stat_at on vd itself."""
        return self.stat_at(t, creds, self._here(vd), mask)

    def setstat_vd(
        self,
        t: Task | None,
        creds: Credentials,
        vd: VirtualDentry,
        opts: SetStatOptions,
    ) -> None:
        """setstat_at on vd itself."""
        self.setstat_at(t, creds, self._here(vd), opts)

    def statfs_vd(
        self, t: Task | None, creds: Credentials, vd: VirtualDentry
    ) -> FS.Statfs:
        """statfs_at on vd itself."""
        return self.statfs_at(t, creds, self._here(vd))

    def listxattr_vd(
        self, t: Task | None, creds: Credentials, vd: VirtualDentry
    ) -> list[bytes]:
        """listxattr_at on vd itself."""
        return self.listxattr_at(t, creds, self._here(vd))

    def getxattr_vd(
        self, t: Task | None, creds: Credentials, vd: VirtualDentry, name: bytes
    ) -> bytes:
        """getxattr_at on vd itself."""
        return self.getxattr_at(t, creds, self._here(vd), name)

    def setxattr_vd(
        self,
        t: Task | None,
        creds: Credentials,
        vd: VirtualDentry,
        opts: SetXattrOptions,
    ) -> None:
        """setxattr_at on vd itself."""
        self.setxattr_at(t, creds, self._here(vd), opts)

    def removexattr_vd(
        self, t: Task | None, creds: Credentials, vd: VirtualDentry, name: bytes
    ) -> None:
        """removexattr_at on vd itself."""
        self.removexattr_at(t, creds, self._here(vd), name)

    # Path generation.

    def path_name(self, root: VirtualDentry, vd: VirtualDentry) -> tuple[bytes, bool]:
        """Returns the path of vd as seen from root (d_path), and whether vd
        is reachable from root. An unreachable file's path is relative to
        the root of its mount namespace (or its filesystem)."""
        parts: list[bytes] = []
        mount, d = vd.mount, vd.dentry
        reachable = True
        with self.mu:
            while True:
                if mount is root.mount and d is root.dentry:
                    break
                if d is mount.root:
                    if mount.parent is None or mount.point is None:
                        reachable = False
                        break
                    d = mount.point
                    mount = mount.parent
                    continue
                parent = d.parent_dentry()
                if parent is None:
                    reachable = False
                    break
                parts.append(d.dentry_name())
                d = parent
        return b"/" + b"/".join(reversed(parts)), reachable

    def path_for_display(
        self, vd: VirtualDentry, root: VirtualDentry | None = None
    ) -> bytes:
        """Returns the path /proc/pid/fd and /proc/pid/maps show for vd:
        its path from root (the namespace root if None), with " (deleted)"
        for a deleted file."""
        if root is None:
            ns = vd.mount.ns
            m = ns.root if ns is not None else vd.mount
            root = VirtualDentry(m, m.root)
        path, _ = self.path_name(root, vd)
        if vd.dentry.is_dead():
            path += b" (deleted)"
        return path

    # Whole-sandbox operations.

    def sync_all_filesystems(self, ns: MountNamespace) -> None:
        """Writes back every filesystem of ns (sync(2))."""
        seen: set[int] = set()
        for m in self.mounts_of(ns):
            if id(m.fs) not in seen:
                seen.add(id(m.fs))
                m.fs.sync()
