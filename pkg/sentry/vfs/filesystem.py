"""Filesystem: the interface every filesystem implementation provides.

Path operations take a ResolvingPath positioned at the first component the
filesystem must resolve (see resolving_path.py). The implementation walks
components under its own locks; when resolution must continue in another
mount (a mount point, `..` at the root of the mount, an absolute symlink)
the ResolvingPath raises a ResolveRedirect through the implementation, and
the VirtualFilesystem moves to the other mount and calls that filesystem.

An implementation therefore:

- walks with rp.component(), rp.advance(), rp.final(), rp.done();
- resolves `.` and `..` with rp.handle_dots(d, parent) (or calls
  rp.check_root(d) before `..` itself) and calls rp.check_mount(d) on each
  dentry it reaches, letting ResolveRedirect propagate (release locks with
  `with`);
- calls rp.handle_symlink(target) for a symlink it should follow
  (rp.should_follow_symlink());
- checks permissions with the helpers in permissions.py against rp.creds;
- calls rp.mount.check_begin_write() before changing anything;
- calls the VFS's prepare_delete_dentry/prepare_rename_dentry before
  removing or replacing a name, which refuse mount points (EBUSY).

Operations that need nothing from a filesystem fail as Linux does when a
filesystem lacks them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.abi.linux.stat import Statx
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.options import (
        GetDentryOptions,
        MkdirOptions,
        MknodOptions,
        OpenOptions,
        RenameOptions,
        SetStatOptions,
        SetXattrOptions,
    )
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem
    from pkg.sentry.vfs.watches import Watch


@dataclass(frozen=True, slots=True)
class GetFilesystemOptions:
    """GetFilesystemOptions is what mount(2) passes to a FilesystemType.

    Attributes:
        source: mount(2)'s source string.
        flags: mount(2)'s MS_* flags.
        data: mount(2)'s data string (comma-separated options).
        internal: options from inside the sentry (never from applications).
    """

    source: str = "none"
    flags: int = 0
    data: str = ""
    internal: object = None


@dataclass(frozen=True, slots=True)
class RegisterFilesystemTypeOptions:
    """RegisterFilesystemTypeOptions say how applications may use a type.

    Attributes:
        allow_user_mount: mount(2) from the sandbox may create it.
        allow_user_list: /proc/filesystems lists it.
        requires_device: the type needs a block device ("nodev" if not).
    """

    allow_user_mount: bool = False
    allow_user_list: bool = False
    requires_device: bool = False


class FilesystemType:
    """FilesystemType makes Filesystems of one kind (struct
    file_system_type)."""

    name = ""

    def get_filesystem(
        self,
        vfs: VirtualFilesystem,
        creds: Credentials,
        opts: GetFilesystemOptions,
    ) -> tuple[Filesystem, Dentry]:
        """Returns a filesystem and the dentry to mount as its root.

        Raises:
            SyscallError: the errno mount(2) fails with (EINVAL for bad
                options, ENODEV, EPERM...).
        """
        raise NotImplementedError


def parse_mount_data(data: str) -> dict[str, str]:
    """Splits a mount data string "a=1,b,c=x" into {"a": "1", "b": "", ...}."""
    out: dict[str, str] = {}
    for item in data.split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        out[key] = value
    return out


class Filesystem:
    """Filesystem is one filesystem instance (struct super_block).

    Attributes:
        vfs: the VirtualFilesystem it belongs to.
        fs_type: its type.
        dev_major, dev_minor: the device number stat(2) reports for its
            files.
        read_only: writes fail with EROFS whatever the mount says.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        dev_major: int = 0,
        dev_minor: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.vfs = vfs
        self.fs_type = fs_type
        self.dev_major = dev_major
        self.dev_minor = (
            vfs.get_anonymous_device_minor() if dev_minor is None else (dev_minor)
        )
        self.read_only = read_only
        self._refs = 0
        self._refs_mu = threading.Lock()
        # The inotify watches on this filesystem's files, which hear
        # IN_UNMOUNT when it goes away.
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()

    # References: one per Mount of this filesystem.

    def inc_ref(self) -> None:
        """Takes a reference."""
        with self._refs_mu:
            self._refs += 1

    def dec_ref(self) -> None:
        """Drops a reference; release runs with the last one."""
        with self._refs_mu:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self._unmount_watches()
            self.release()

    def add_watch(self, watch: Watch) -> None:
        """Records an inotify watch on one of this filesystem's files."""
        with self._refs_mu:
            self._watches.add(watch)

    def _unmount_watches(self) -> None:
        """Tells every watch that the filesystem is gone (its last mount
        was unmounted), as the superblock's shutdown does."""
        with self._refs_mu:
            watches = sorted(self._watches, key=lambda w: w.wd)
            self._watches = weakref.WeakSet()
        for w in watches:
            w.target.unmount(w)

    def release(self) -> None:
        """Frees what the filesystem holds (host descriptors, memory)."""

    # Whole-filesystem operations.

    def sync(self) -> None:
        """Writes back cached data (sync(2), syncfs(2))."""

    def mount_options(self) -> str:
        """Returns the options /proc/pid/mounts shows for this filesystem."""
        return ""

    def is_descendant(self, ancestor: Dentry, d: Dentry) -> bool:
        """Reports whether d is ancestor or below it in this filesystem."""
        cur: Dentry | None = d
        while cur is not None:
            if cur is ancestor:
                return True
            cur = cur.parent_dentry()
        return False

    # Path operations. Each takes a ResolvingPath; see the module docstring.

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        """Checks access(2) permissions on the file at rp (ats is a mask of
        MAY_READ, MAY_WRITE, MAY_EXEC)."""
        raise NotImplementedError

    def get_dentry_at(self, rp: ResolvingPath, opts: GetDentryOptions) -> Dentry:
        """Returns the dentry at rp (chdir, chroot, mount targets...)."""
        raise NotImplementedError

    def get_parent_dentry_at(self, rp: ResolvingPath) -> Dentry:
        """Returns the dentry of the directory that contains the file rp
        names, leaving its last component unresolved."""
        raise NotImplementedError

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        """Opens or creates the file at rp (open(2))."""
        raise NotImplementedError

    def mkdir_at(self, rp: ResolvingPath, opts: MkdirOptions) -> None:
        """Creates a directory at rp."""
        raise SyscallError(errno.EPERM)

    def mknod_at(self, rp: ResolvingPath, opts: MknodOptions) -> None:
        """Creates a file, FIFO, socket or device node at rp."""
        raise SyscallError(errno.EPERM)

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        """Creates a symbolic link at rp."""
        raise SyscallError(errno.EPERM)

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        """Creates a hard link at rp to old, which is on this filesystem."""
        raise SyscallError(errno.EPERM)

    def rename_at(
        self,
        rp: ResolvingPath,
        old_parent: VirtualDentry,
        old_name: bytes,
        opts: RenameOptions,
    ) -> None:
        """Renames old_parent/old_name to rp, within this filesystem."""
        raise SyscallError(errno.EPERM)

    def rmdir_at(self, rp: ResolvingPath) -> None:
        """Removes the empty directory at rp."""
        raise SyscallError(errno.EPERM)

    def unlink_at(self, rp: ResolvingPath) -> None:
        """Removes the non-directory name at rp."""
        raise SyscallError(errno.EPERM)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        """Returns the target of the symbolic link at rp."""
        raise SyscallError(errno.EINVAL)

    def stat_at(self, rp: ResolvingPath, mask: int) -> Statx:
        """Returns the attributes of the file at rp."""
        raise NotImplementedError

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        """Changes the attributes of the file at rp."""
        raise SyscallError(errno.EPERM)

    def statfs_at(self, rp: ResolvingPath) -> Statfs:
        """Returns statfs(2) for the filesystem holding the file at rp."""
        raise NotImplementedError

    def listxattr_at(self, rp: ResolvingPath) -> list[bytes]:
        """Returns the names of the extended attributes of the file at rp."""
        raise SyscallError(errno.EOPNOTSUPP)

    def getxattr_at(self, rp: ResolvingPath, name: bytes) -> bytes:
        """Returns the value of an extended attribute (ENODATA if unset)."""
        raise SyscallError(errno.EOPNOTSUPP)

    def setxattr_at(self, rp: ResolvingPath, opts: SetXattrOptions) -> None:
        """Sets an extended attribute."""
        raise SyscallError(errno.EOPNOTSUPP)

    def removexattr_at(self, rp: ResolvingPath, name: bytes) -> None:
        """Removes an extended attribute."""
        raise SyscallError(errno.EOPNOTSUPP)

    def bound_endpoint_at(self, rp: ResolvingPath) -> object:
        """Returns the Unix socket endpoint bound at rp (connect(2))."""
        raise SyscallError(errno.ECONNREFUSED)
