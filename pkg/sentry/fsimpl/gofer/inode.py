"""Inodes and dentries of the gofer client filesystem.

A GoferDentry is one name the sentry has looked up through the gofer; it
holds the gofer node id for that name, which path operations below it are
relative to. A GoferInode is the file itself, shared by every dentry whose
host file is the same inode (hard links, a directory reached through a host
bind mount), keyed by the host's (st_dev, st_ino). The inode caches the
file's attributes: the sentry has exclusive access to the files it is
served (no one else changes them), so what the gofer reported, updated by
the sentry's own changes, stays true. Writes through a donated descriptor
leave the cache "stale"; the next stat refreshes it with one fstat of that
descriptor.

Node ids are a bounded cache (each is a descriptor held by the gofer): a
dentry that has not been used for a while gives its node back and gets a
new one by walking from its parent when it is needed again, which, with
exclusive access, finds the same inode (checked; ESTALE if not). Deleted
dentries keep their node: their name cannot be walked again.
TODO(#5): dentries themselves (sentry memory) are never evicted.

Regular files are read and written through host descriptors the gofer
donates, at most two per inode (one read-only, one read-write), shared by
every open file of the inode and closed when the last one closes. A file
that is mmapped gets a FileCache (a page cache in the MemoryFile) in front
of those descriptors; from then on reads and writes go through the cache
too, so mappings and read(2)/write(2) see the same bytes. FIFOs and
sockets are the sentry's own: a FIFO's pipe and a socket's bound endpoint
live in the inode, never on the host.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.vfs.dentry import NamedDentry
from pkg.sentry.vfs.lock import FileLocks
from pkg.sentry.vfs.permissions import generic_check_permissions
from pkg.sentry.vfs.watches import Watches

if TYPE_CHECKING:
    from pkg.gofer.proto import gofer_pb2 as pb
    from pkg.sentry.fsimpl.gofer.gofer import GoferFilesystem
    from pkg.sentry.fsimpl.pipefs.pipe import Pipe
    from pkg.sentry.kernel.credentials import Credentials

_NS = 1_000_000_000


def _ns(ts: pb.Timespec) -> int:
    return ts.sec * _NS + ts.nsec


class GoferInode:
    """GoferInode is a file served by the gofer.

    Attributes:
        fs: the filesystem.
        key: the host's (st_dev, st_ino).
        ino: the inode number the sandbox sees.
        mode, uid, gid, nlink, size, blocks, blksize, atime_ns, mtime_ns,
            ctime_ns, rdev: cached attributes (attr_mu).
        stale: the cached attributes may be out of date (after a write).
        locks: advisory locks.
        target: a symlink's target, once read.
        pipe: a FIFO's pipe, made on first open.
        endpoint: the Unix socket endpoint bound here (bind(2)).
    """

    __slots__ = (
        "atime_ns",
        "attr_mu",
        "blksize",
        "blocks",
        "cache",
        "ctime_ns",
        "dentries",
        "endpoint",
        "fd_mu",
        "fs",
        "gid",
        "ino",
        "key",
        "locks",
        "mode",
        "mtime_ns",
        "nlink",
        "opens",
        "pipe",
        "rdev",
        "read_fd",
        "rw_fd",
        "size",
        "stale",
        "target",
        "uid",
        "watches",
    )

    def __init__(self, fs: GoferFilesystem, ino: int, st: pb.Stat) -> None:
        self.fs = fs
        self.key = (st.dev, st.ino)
        self.ino = ino
        # Open files using the donated descriptors.
        self.opens = 0
        # The page cache, made by the first mmap (FileCache).
        self.cache: FileCache | None = None
        self.attr_mu = threading.Lock()
        self.fd_mu = threading.Lock()
        self.read_fd = -1
        self.rw_fd = -1
        self.locks = FileLocks()
        self.target: bytes | None = None
        self.pipe: Pipe | None = None
        self.endpoint: object = None
        # Dentries naming this inode that have not been released.
        self.dentries = 0
        self.stale = False
        # inotify watches, shared by the file's hard links.
        self.watches: Watches | None = None
        self.update(st)

    def __repr__(self) -> str:
        return f"GoferInode(ino={self.ino}, mode={self.mode:o})"

    # Attributes.

    def update(self, st: pb.Stat) -> None:
        """Replaces the cached attributes with st (from the gofer)."""
        with self.attr_mu:
            self.mode = st.mode
            self.uid = st.uid
            self.gid = st.gid
            self.nlink = st.nlink
            self.size = st.size
            self.blocks = st.blocks
            self.blksize = st.blksize or 4096
            self.atime_ns = _ns(st.atime)
            self.mtime_ns = _ns(st.mtime)
            self.ctime_ns = _ns(st.ctime)
            self.rdev = (st.rdev_major, st.rdev_minor)
            self.stale = False

    def update_host(self, st: os.stat_result) -> None:
        """Replaces the cached attributes with an fstat of a donated
        descriptor."""
        with self.attr_mu:
            self.mode = st.st_mode
            self.uid = st.st_uid
            self.gid = st.st_gid
            self.nlink = st.st_nlink
            self.size = st.st_size
            self.blocks = st.st_blocks
            self.atime_ns = st.st_atime_ns
            self.mtime_ns = st.st_mtime_ns
            self.ctime_ns = st.st_ctime_ns
            self.stale = False

    @property
    def file_type(self) -> int:
        """The S_IFMT bits of the mode."""
        return self.mode & S.S_IFMT

    def is_dir(self) -> bool:
        """Reports whether the inode is a directory."""
        return self.mode & S.S_IFMT == S.S_IFDIR

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        """Checks access against the cached mode and owner."""
        generic_check_permissions(creds, ats, self.mode, self.uid, self.gid)

    def refresh(self, d: GoferDentry) -> None:
        """Brings stale attributes up to date; d is a dentry of the inode,
        for asking the gofer."""
        if not self.stale:
            return
        with self.fd_mu:
            fd = self.rw_fd if self.rw_fd >= 0 else self.read_fd
            if fd >= 0:
                self.update_host(os.fstat(fd))
                return
        fs = self.fs
        with fs.locked():
            self.update(fs.rpc(fs.client.stat, fs.node(d)))

    def statx(self, d: GoferDentry) -> S.Statx:
        """Returns the attributes as the sandbox sees them; d is a dentry
        of the inode."""
        self.refresh(d)
        with self.attr_mu:
            return S.Statx(
                mask=S.STATX_BASIC_STATS,
                blksize=self.blksize,
                nlink=self.nlink,
                uid=self.uid,
                gid=self.gid,
                mode=self.mode,
                ino=self.ino,
                size=self.size,
                blocks=self.blocks,
                atime_ns=self.atime_ns,
                ctime_ns=self.ctime_ns,
                mtime_ns=self.mtime_ns,
                rdev_major=self.rdev[0],
                rdev_minor=self.rdev[1],
                dev_major=self.fs.dev_major,
                dev_minor=self.fs.dev_minor,
            )

    # Host descriptors.

    def open_host_fd(self, d: GoferDentry, writable: bool) -> int:
        """Returns a donated descriptor for a new open file of the inode
        (opening one on first use) and counts the open file; d is a dentry
        of the inode. The open file calls close_host_fd when it goes.

        Raises:
            SyscallError: the gofer refused (EROFS on a read-only mount...).
        """
        fs = self.fs
        with self.fd_mu:
            if self.rw_fd < 0 and (writable or self.read_fd < 0):
                flags = F.O_RDWR if writable else F.O_RDONLY
                with fs.locked():
                    fd = fs.rpc(fs.client.open, fs.node(d), flags)
                if writable:
                    self.rw_fd = fd
                else:
                    self.read_fd = fd
            self.opens += 1
            return self.rw_fd if self.rw_fd >= 0 else self.read_fd

    def adopt_fd(self, fd: int) -> None:
        """Keeps a read-write descriptor the gofer donated at creation."""
        with self.fd_mu:
            if self.rw_fd < 0:
                self.rw_fd = fd
            else:
                os.close(fd)

    def file_cache(self) -> FileCache:
        """Returns the inode's page cache, making it on first use.
        Precondition: an open file of the inode exists (it keeps the
        descriptors the cache reads and writes through)."""
        with self.fd_mu:
            if self.cache is None:
                self.cache = FileCache(self.fs.mf, _InodeBacking(self))
            return self.cache

    def close_host_fd(self) -> None:
        """Uncounts an open file; the last one closes the descriptors (and
        writes back and drops the page cache: no mapping is left, since
        every mapping holds its open file)."""
        with self.fd_mu:
            self.opens -= 1
            if self.opens > 0:
                return
            cache, self.cache = self.cache, None
        if cache is not None:
            cache.dec_ref()
        with self.fd_mu:
            if self.opens > 0:
                return
            for fd in (self.read_fd, self.rw_fd):
                if fd >= 0:
                    os.close(fd)
            self.read_fd = self.rw_fd = -1


class _InodeBacking:
    """_InodeBacking is the FileCache backing of a gofer regular file: its
    donated descriptors, whichever are open when the cache needs them."""

    __slots__ = ("inode",)

    def __init__(self, inode: GoferInode) -> None:
        self.inode = inode

    def _fd(self, writable: bool) -> int:
        inode = self.inode
        fd = inode.rw_fd if inode.rw_fd >= 0 or writable else inode.read_fd
        if fd < 0:
            raise SyscallError(errno.EIO)
        return fd

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self._fd(False), length, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        try:
            n = os.pwrite(self._fd(True), data, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None
        self.inode.stale = True
        return n

    def size(self) -> int:
        try:
            return os.fstat(self._fd(False)).st_size
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    def fsync(self) -> None:
        try:
            os.fsync(self._fd(False))
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None


class GoferDentry(NamedDentry):
    """GoferDentry is one name looked up through the gofer.

    Attributes:
        fs: the filesystem.
        inode: the file.
        node: the gofer node id of this name; 0 while it has none (given
            back to the gofer, or the dentry released).
        parent: the directory holding the name; None for the root.
        name: the name.
        children: for a directory, looked-up names: a dentry, or None for
            a name known not to exist (exclusive access makes both stay
            true until the sentry itself changes them).
    """

    __slots__ = (
        "_refs",
        "children",
        "fs",
        "inode",
        "node",
        "released",
    )

    def __init__(
        self,
        fs: GoferFilesystem,
        inode: GoferInode,
        node: int,
        parent: GoferDentry | None,
        name: bytes,
    ) -> None:
        super().__init__()
        self.fs = fs
        self.inode = inode
        self.node = node
        self.parent = parent
        self.name = name
        self.children: dict[bytes, GoferDentry | None] = {}
        self._refs = 0
        self.released = False
        inode.dentries += 1

    def __repr__(self) -> str:
        return f"GoferDentry({self.name!r}, node={self.node}, {self.inode!r})"

    # Watches belong to the inode, which hard links share.

    def watches(self) -> Watches | None:
        return self.inode.watches

    def ensure_watches(self) -> Watches:
        if self.inode.watches is None:
            self.inode.watches = Watches()
        return self.inode.watches

    def inode_key(self) -> object:
        return self.inode

    def is_dir(self) -> bool:
        return self.inode.is_dir()

    # References: the tree keeps a live dentry; open files and working
    # directories keep a deleted one until they let go.

    def inc_ref(self) -> None:
        with self.fs.refs_mu:
            self._refs += 1

    def dec_ref(self) -> None:
        with self.fs.refs_mu:
            self._refs -= 1
            gone = self._refs == 0 and self.is_dead()
        if gone:
            self.fs.release_dentry(self)

    def unused(self) -> bool:
        """Reports whether nothing outside the tree refers to the dentry."""
        with self.fs.refs_mu:
            return self._refs == 0

    def require_dir(self) -> None:
        """Raises ENOTDIR unless the dentry is a directory."""
        if not self.inode.is_dir():
            raise SyscallError(errno.ENOTDIR)
