"""tmpfs inodes and dentries.

Every tmpfs file is an Inode (attributes, extended attributes, locks) of one
kind: Directory (its names), RegularFile (regular_file.py: pages of the
MemoryFile), Symlink, DeviceNode, Fifo (a Pipe) or SocketNode (a bound Unix
socket). A Dentry is one name of an inode; a directory has exactly one.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fs as FS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipe import Pipe
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.vfs.dentry import NamedDentry
from pkg.sentry.vfs.inode_attrs import InodeAttrs
from pkg.sentry.vfs.lock import FileLocks
from pkg.sentry.vfs.options import SetXattrOptions
from pkg.sentry.vfs.permissions import (
    check_xattr_permission,
)
from pkg.sentry.vfs.watches import Watches

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsFilesystem
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task

# Directory sizes as tmpfs reports them (BOGO_DIRENT_SIZE per entry).
BOGO_DIRENT_SIZE = 20
# The first directory offset a child gets; 0 and 1 are "." and "..".
FIRST_CHILD_OFFSET = 2


class Inode(InodeAttrs):
    """Inode is a tmpfs file of any kind.

    Attributes:
        fs: the filesystem.
        locks: advisory locks.
        xattrs: extended attributes (None until the first is set).
        watches: inotify watches (None until the first is added).
    """

    __slots__ = ("fs", "locks", "watches", "xattrs")

    def __init__(
        self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int, nlink: int = 1
    ) -> None:
        super().__init__(fs.next_ino(), mode, uid, gid, nlink)
        self.fs = fs
        self.locks = FileLocks()
        self.xattrs: dict[bytes, bytes] | None = None
        self.watches: Watches | None = None

    def set_size(self, t: Task | None, size: int) -> bool:
        raise SyscallError(errno.EINVAL)

    def statx(self, dev_major: int = 0, dev_minor: int = 0, mask: int = 0) -> S.Statx:
        return super().statx(self.fs.dev_major, self.fs.dev_minor, mask)

    def on_unlinked(self) -> None:
        """Called when the last link goes (nlink reached 0)."""

    # Extended attributes (shmem's simple_xattr handlers, with the checks
    # of fs/xattr.c xattr_permission).

    def _check_xattr(self, creds: Credentials, name: bytes, write: bool) -> None:
        check_xattr_permission(creds, self, name, write)

    def getxattr(self, creds: Credentials, name: bytes) -> bytes:
        """Returns an attribute's value (ENODATA if unset)."""
        self._check_xattr(creds, name, write=False)
        value = (self.xattrs or {}).get(name)
        if value is None:
            raise SyscallError(errno.ENODATA)
        return value

    def listxattr(self, creds: Credentials) -> list[bytes]:
        """Returns the names the caller may see."""
        names = []
        for name in self.xattrs or {}:
            if name.startswith(FS.XATTR_TRUSTED_PREFIX) and not creds.has_capability(
                CAP_SYS_ADMIN
            ):
                continue
            names.append(name)
        return names

    def setxattr(self, creds: Credentials, opts: SetXattrOptions) -> None:
        """Sets an attribute, honouring XATTR_CREATE and XATTR_REPLACE."""
        self._check_xattr(creds, opts.name, write=True)
        with self.attr_mu:
            xattrs = self.xattrs if self.xattrs is not None else {}
            exists = opts.name in xattrs
            if opts.flags & FS.XATTR_CREATE and exists:
                raise SyscallError(errno.EEXIST)
            if opts.flags & FS.XATTR_REPLACE and not exists:
                raise SyscallError(errno.ENODATA)
            xattrs[opts.name] = opts.value
            self.xattrs = xattrs
        self.touch_ctime()

    def removexattr(self, creds: Credentials, name: bytes) -> None:
        """Removes an attribute (ENODATA if unset)."""
        self._check_xattr(creds, name, write=True)
        with self.attr_mu:
            if not self.xattrs or name not in self.xattrs:
                raise SyscallError(errno.ENODATA)
            del self.xattrs[name]
        self.touch_ctime()


class TmpfsDentry(NamedDentry):
    """TmpfsDentry is one name of an inode.

    Attributes:
        parent: the directory holding the name (kept after deletion, for
            " (deleted)" paths); None for the root and for O_TMPFILE files.
        name: the name.
        inode: the file.
        dir_offset: the directory offset getdents gives the entry.
    """

    __slots__ = ("dir_offset", "inode")

    def __init__(self, inode: Inode, parent: TmpfsDentry | None, name: bytes) -> None:
        super().__init__()
        self.inode = inode
        self.parent = parent
        self.name = name
        self.dir_offset = 0

    def __repr__(self) -> str:
        return f"TmpfsDentry({self.name!r}, ino={self.inode.ino})"

    def is_dir(self) -> bool:
        return isinstance(self.inode, Directory)

    # Watches belong to the inode, which hard links share.

    def watches(self) -> Watches | None:
        return self.inode.watches

    def inode_key(self) -> object:
        return self.inode

    def ensure_watches(self) -> Watches:
        if self.inode.watches is None:
            self.inode.watches = Watches()
        return self.inode.watches


class Directory(Inode):
    """Directory maps names to child dentries, in creation order.

    Attributes:
        children: name -> dentry.
        ordered: the children sorted by dir_offset (getdents order).
    """

    __slots__ = ("_next_offset", "children", "ordered")

    def __init__(self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, S.S_IFDIR | mode & S.S_IALLUGO, uid, gid, nlink=2)
        self.children: dict[bytes, TmpfsDentry] = {}
        self.ordered: list[TmpfsDentry] = []
        self._next_offset = FIRST_CHILD_OFFSET

    def attr_size(self) -> int:
        return (len(self.children) + 2) * BOGO_DIRENT_SIZE

    def insert(self, d: TmpfsDentry) -> None:
        """Adds d under its name. Precondition: fs.mu held."""
        d.dir_offset = self._next_offset
        self._next_offset += 1
        self.children[d.name] = d
        self.ordered.append(d)
        if isinstance(d.inode, Directory):
            self.nlink += 1

    def remove(self, d: TmpfsDentry) -> None:
        """Drops d from the directory. Precondition: fs.mu held."""
        del self.children[d.name]
        i = bisect.bisect_left(self.ordered, d.dir_offset, key=lambda c: c.dir_offset)
        assert self.ordered[i] is d
        del self.ordered[i]
        if isinstance(d.inode, Directory):
            self.nlink -= 1

    def entries_from(self, offset: int) -> list[TmpfsDentry]:
        """Returns the children at or after directory offset."""
        i = bisect.bisect_left(self.ordered, offset, key=lambda c: c.dir_offset)
        return self.ordered[i:]


class Symlink(Inode):
    """Symlink holds a symbolic link's target."""

    __slots__ = ("target",)

    def __init__(self, fs: TmpfsFilesystem, uid: int, gid: int, target: bytes) -> None:
        super().__init__(fs, S.S_IFLNK | 0o777, uid, gid)
        self.target = target

    def attr_size(self) -> int:
        return len(self.target)


class DeviceNode(Inode):
    """DeviceNode is a character or block device node."""

    __slots__ = ("major", "minor")

    def __init__(
        self,
        fs: TmpfsFilesystem,
        mode: int,
        uid: int,
        gid: int,
        major: int,
        minor: int,
    ) -> None:
        super().__init__(fs, mode, uid, gid)
        self.major = major
        self.minor = minor

    def attr_rdev(self) -> tuple[int, int]:
        return (self.major, self.minor)


class Fifo(Inode):
    """Fifo is a named pipe."""

    __slots__ = ("pipe",)

    def __init__(self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, S.S_IFIFO | mode & S.S_IALLUGO, uid, gid)
        self.pipe = Pipe(named=True)


class SocketNode(Inode):
    """SocketNode is a Unix socket bound to a path; endpoint is what
    connect(2) finds there."""

    __slots__ = ("endpoint",)

    def __init__(
        self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int, endpoint: object
    ) -> None:
        super().__init__(fs, S.S_IFSOCK | mode & S.S_IALLUGO, uid, gid)
        self.endpoint = endpoint
