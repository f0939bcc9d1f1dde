"""kernfs: a small framework for filesystems whose files the sentry makes up
from its own state (procfs, sysfs), as gVisor's kernfs and Linux's
fs/kernfs and fs/proc/generic.c are.

A filesystem is a tree of Inodes:

- `DirInode`: `lookup(t, name)` and `entries(t)`; `StaticDir` holds a fixed
  dict of children, dynamic directories (/proc itself, /proc/pid/fd)
  compute theirs on each call;
- `DataInode`: a regular file whose contents `generate(t)` renders when
  it is read from offset 0 (a seq_file); `write(t, data)` if writable;
- `SymlinkInode`: `readlink(t)`; a "magic link" (/proc/pid/exe, fd/N)
  also has `jump(t)`, which returns where following it goes: a
  VirtualDentry, or an open FileDescription for files that have no path
  (host descriptors, memfds), which only opening can follow.

`t` is the task asking (the resolving or reading task), or None inside the
sentry: /proc/self depends on it.

Dentries are made on lookup and kept in their parent's `children` cache
while lookup keeps returning the same Inode object, so a file reached twice
is the same dentry (mount points in /proc keep working); a dynamic
directory that returns a new Inode replaces the cached dentry.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.dentry import Dentry, NamedDentry, VirtualDentry
from pkg.sentry.vfs.directory_fd import DirectoryFD
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.filesystem import Filesystem
from pkg.sentry.vfs.llseek import generic_llseek
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.permissions import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    check_open,
    check_search_dir,
    generic_check_permissions,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.filesystem import FilesystemType
    from pkg.sentry.vfs.options import (
        GetDentryOptions,
        OpenOptions,
        SetStatOptions,
    )
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem

PAGE_SIZE = 4096
# The most a generated file may hold (seq_file's buffers grow to this).
MAX_FILE_SIZE = 1 << 24

# Cached children of a directory beyond which the invalid ones are dropped.
_SWEEP_AT = 256

_inos = itertools.count(1)


def next_ino() -> int:
    """Returns a fresh inode number for a kernfs file."""
    return next(_inos)


class Inode:
    """Inode is one file of a kernfs filesystem.

    Attributes:
        ino: the inode number.
        mode: file type and permission bits.
    """

    __slots__ = ("__weakref__", "ino", "mode")

    def __init__(self, mode: int, ino: int | None = None) -> None:
        self.ino = next_ino() if ino is None else ino
        self.mode = mode

    def owner(self) -> tuple[int, int]:
        """Returns (uid, gid); root's unless the file belongs to a task."""
        return 0, 0

    def nlink(self) -> int:
        """Returns st_nlink."""
        return 1

    def size(self) -> int:
        """Returns st_size (0 for generated files, as Linux's)."""
        return 0

    def mode_now(self) -> int:
        """Returns the mode as it is now (a task's files may change)."""
        return self.mode

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        """Checks access by mode and owner (generic_permission)."""
        uid, gid = self.owner()
        generic_check_permissions(creds, ats, self.mode_now(), uid, gid)

    def statx(self, fs: Filesystem) -> S.Statx:
        """Returns the file's attributes."""
        uid, gid = self.owner()
        t = fs.boot_time_ns if isinstance(fs, KernfsFilesystem) else 0
        return S.Statx(
            mask=S.STATX_BASIC_STATS,
            blksize=PAGE_SIZE,
            nlink=self.nlink(),
            uid=uid,
            gid=gid,
            mode=self.mode_now(),
            ino=self.ino,
            size=self.size(),
            blocks=0,
            atime_ns=t,
            ctime_ns=t,
            mtime_ns=t,
            dev_major=fs.dev_major,
            dev_minor=fs.dev_minor,
            rdev_major=self.rdev()[0],
            rdev_minor=self.rdev()[1],
        )

    def setstat(self, t: Task | None, creds: Credentials, opts: SetStatOptions) -> None:
        """Changes attributes: refused, as for most of /proc (EPERM)."""
        if opts.mask:
            raise SyscallError(errno.EPERM)

    def valid(self) -> bool:
        """Reports whether the file still exists (a task's files vanish
        when the task is reaped)."""
        return True

    def rdev(self) -> tuple[int, int]:
        """Returns the device number of a device node."""
        return 0, 0


class DirInode(Inode):
    """DirInode is a directory."""

    __slots__ = ()

    def __init__(self, perm: int = 0o555, ino: int | None = None) -> None:
        super().__init__(S.S_IFDIR | perm, ino)

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        """Returns the child called name, or None."""
        for n, inode in self.entries(t):
            if n == name:
                return inode
        return None

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        """Returns the children in directory order."""
        return []

    def nlink(self) -> int:
        return 2


class StaticDir(DirInode):
    """StaticDir is a directory with fixed children."""

    __slots__ = ("children",)

    def __init__(
        self, children: dict[bytes, Inode] | None = None, perm: int = 0o555
    ) -> None:
        super().__init__(perm)
        self.children: dict[bytes, Inode] = dict(children or {})

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        return self.children.get(name)

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        return list(self.children.items())

    def nlink(self) -> int:
        return 2 + sum(1 for c in self.children.values() if isinstance(c, DirInode))


class DataInode(Inode):
    """DataInode is a regular file whose contents are generated."""

    __slots__ = ()

    def __init__(self, perm: int = 0o444, ino: int | None = None) -> None:
        super().__init__(S.S_IFREG | perm, ino)

    def generate(self, t: Task | None) -> bytes:
        """Returns the file's contents now."""
        return b""

    def write(self, t: Task, data: bytes, offset: int) -> int:
        """Handles a write; returns the bytes consumed.

        Raises:
            SyscallError: EINVAL, the default, for a file that takes no
                writes (its mode already refused writers without
                privileges), as for a file without a write operation.
        """
        raise SyscallError(errno.EINVAL)

    def pread(self, t: Task, length: int, offset: int) -> bytes | None:
        """Reads at offset without generating the whole file, for files that
        are windows on something large (/proc/pid/mem); None to use
        generate."""
        return None

    def seekable_end(self) -> bool:
        """Reports whether SEEK_END is allowed (seq_lseek refuses it)."""
        return False


class StaticData(DataInode):
    """StaticData is a file with contents computed by a function."""

    __slots__ = ("_fn",)

    def __init__(
        self, fn: bytes | Callable[[Task | None], bytes], perm: int = 0o444
    ) -> None:
        super().__init__(perm)
        self._fn = fn

    def generate(self, t: Task | None) -> bytes:
        fn = self._fn
        if isinstance(fn, bytes):
            return fn
        return fn(t)


class SymlinkInode(Inode):
    """SymlinkInode is a symbolic link, or a magic link if jump is
    overridden."""

    __slots__ = ()

    def __init__(self, perm: int = 0o777, ino: int | None = None) -> None:
        super().__init__(S.S_IFLNK | perm, ino)

    def readlink(self, t: Task | None) -> bytes:
        """Returns the link's target text.

        Raises:
            SyscallError: ENOENT when the target is gone.
        """
        return b""

    def jump(self, t: Task | None) -> VirtualDentry | FileDescription | None:
        """Returns where a magic link leads; None for an ordinary link,
        whose readlink text is followed as a path. A FileDescription comes
        with a reference for the caller."""
        return None

    def check_follow(self, creds: Credentials) -> None:
        """Checks that creds may follow the link (for magic links, the
        ptrace access check of proc_fd_access_allowed)."""


class StaticSymlink(SymlinkInode):
    """StaticSymlink is a link whose target is computed by a function."""

    __slots__ = ("_fn",)

    def __init__(self, fn: bytes | Callable[[Task | None], bytes]) -> None:
        super().__init__()
        self._fn = fn

    def readlink(self, t: Task | None) -> bytes:
        fn = self._fn
        if isinstance(fn, bytes):
            return fn
        return fn(t)


class DeviceInode(Inode):
    """DeviceInode is a device node whose opening the filesystem decides
    (devpts's ptmx and replicas)."""

    __slots__ = ()

    def open(self, t: Task | None, vd: VirtualDentry, flags: int) -> FileDescription:
        """Returns a new open file of the node."""
        raise SyscallError(errno.ENXIO)


class KernfsDentry(NamedDentry):
    """KernfsDentry names an Inode in its parent directory."""

    __slots__ = ("children", "inode")

    def __init__(self, inode: Inode, parent: KernfsDentry | None, name: bytes) -> None:
        super().__init__()
        self.inode = inode
        self.parent = parent
        self.name = name
        self.children: dict[bytes, KernfsDentry] = {}

    def is_dir(self) -> bool:
        return isinstance(self.inode, DirInode)

    def __repr__(self) -> str:
        return f"KernfsDentry({self.name!r})"


class KernfsFilesystem(Filesystem):
    """KernfsFilesystem serves a tree of Inodes.

    Attributes:
        root: the root dentry.
        magic: f_type of statfs(2).
        boot_time_ns: the timestamps every file shows.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        root: DirInode,
        magic: int,
        boot_time_ns: int = 0,
        read_only: bool = False,
    ) -> None:
        super().__init__(vfs, fs_type, read_only=read_only)
        self.mu = threading.RLock()
        self.root = KernfsDentry(root, None, b"")
        self.magic = magic
        self.boot_time_ns = boot_time_ns

    # Walking.

    def _child(self, t: Task | None, d: KernfsDentry, name: bytes) -> KernfsDentry:
        inode = d.inode
        assert isinstance(inode, DirInode)
        with self.mu:
            child_inode = inode.lookup(t, name)
            if child_inode is None or not child_inode.valid():
                d.children.pop(name, None)
                raise SyscallError(errno.ENOENT)
            cached = d.children.get(name)
            if cached is not None and cached.inode is child_inode:
                return cached
            child = KernfsDentry(child_inode, d, name)
            d.children[name] = child
            if len(d.children) > _SWEEP_AT:
                # Forget the names of files gone since (exited processes),
                # unless something is mounted there.
                for n, c in list(d.children.items()):
                    if not c.inode.valid() and not c.is_mountpoint():
                        del d.children[n]
            return child

    def _step(self, rp: ResolvingPath, d: KernfsDentry) -> KernfsDentry:
        """Resolves rp's current component from directory d; returns d
        itself after splicing in an ordinary symlink."""
        inode = d.inode
        if not isinstance(inode, DirInode):
            raise SyscallError(errno.ENOTDIR)
        if not inode.valid():
            raise SyscallError(errno.ENOENT)
        inode.check_permissions(rp.creds, MAY_EXEC)
        reached = rp.handle_dots(d, d.parent)
        if reached is not None:
            return reached
        name = rp.component()
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        child = self._child(rp.task, d, name)
        rp.check_mount(child)
        if isinstance(child.inode, SymlinkInode) and rp.should_follow_symlink():
            self._follow(rp, child.inode)
            return d
        rp.advance()
        return child

    def _follow(self, rp: ResolvingPath, link: SymlinkInode) -> None:
        """Follows link at rp's current component: splices an ordinary
        link's target in, or jumps for a magic link. A magic link to a file
        without a path can only be the last component; the caller handles
        it (_resolve_file)."""
        link.check_follow(rp.creds)
        target = link.jump(rp.task)
        if target is None:
            rp.handle_symlink(link.readlink(rp.task))
            return
        if isinstance(target, VirtualDentry):
            rp.handle_jump(target)
        raise _PathlessTarget(target)

    def _resolve(self, rp: ResolvingPath) -> KernfsDentry:
        d = rp.start
        assert isinstance(d, KernfsDentry)
        while not rp.done():
            try:
                d = self._step(rp, d)
            except _PathlessTarget as e:
                final = rp.final()
                e.file.dec_ref()
                raise SyscallError(errno.ENXIO if final else errno.ENOTDIR) from None
        if not d.inode.valid():
            raise SyscallError(errno.ENOENT)
        if rp.must_be_dir() and not isinstance(d.inode, DirInode):
            raise SyscallError(errno.ENOTDIR)
        return d

    def _resolve_file(
        self, rp: ResolvingPath
    ) -> tuple[KernfsDentry | None, FileDescription | None]:
        """Like _resolve, but a final magic link to a file without a path
        yields that file (with a reference the caller drops)."""
        d = rp.start
        assert isinstance(d, KernfsDentry)
        while not rp.done():
            try:
                d = self._step(rp, d)
            except _PathlessTarget as e:
                if not rp.final():
                    e.file.dec_ref()
                    raise SyscallError(errno.ENOTDIR) from None
                return None, e.file
        if not d.inode.valid():
            raise SyscallError(errno.ENOENT)
        if rp.must_be_dir() and not isinstance(d.inode, DirInode):
            raise SyscallError(errno.ENOTDIR)
        return d, None

    def _walk_parent(self, rp: ResolvingPath) -> KernfsDentry:
        d = rp.start
        assert isinstance(d, KernfsDentry)
        while not rp.done() and not rp.final():
            try:
                d = self._step(rp, d)
            except _PathlessTarget as e:
                e.file.dec_ref()
                raise SyscallError(errno.ENOTDIR) from None
        if not isinstance(d.inode, DirInode):
            raise SyscallError(errno.ENOTDIR)
        return d

    # Path operations.

    def get_dentry_at(self, rp: ResolvingPath, opts: GetDentryOptions) -> Dentry:
        d = self._resolve(rp)
        if opts.check_search_dir:
            check_search_dir(rp.creds, d, d.inode)
        return d

    def get_parent_dentry_at(self, rp: ResolvingPath) -> Dentry:
        return self._walk_parent(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        d, f = self._resolve_file(rp)
        if f is not None:
            f.dec_ref()
            return
        assert d is not None
        if ats & MAY_WRITE:
            rp.mount.check_begin_write()
        d.inode.check_permissions(rp.creds, ats)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        d = self._resolve(rp)
        inode = d.inode
        if not isinstance(inode, SymlinkInode):
            raise SyscallError(errno.EINVAL)
        return inode.readlink(rp.task)

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        d, f = self._resolve_file(rp)
        if f is not None:
            try:
                return f.stat(rp.task, mask)  # type: ignore[arg-type]
            finally:
                f.dec_ref()
        assert d is not None
        return d.inode.statx(self)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        d = self._resolve(rp)
        rp.mount.check_begin_write()
        d.inode.setstat(rp.task, rp.creds, opts)

    def statfs_at(self, rp: ResolvingPath) -> FS.Statfs:
        self._resolve(rp)
        return FS.Statfs(
            type=self.magic,
            block_size=PAGE_SIZE,
            name_length=FS.NAME_MAX,
            fragment_size=PAGE_SIZE,
        )

    def mkdir_at(self, rp: ResolvingPath, opts: object) -> None:
        self._refuse_create(rp)

    def mknod_at(self, rp: ResolvingPath, opts: object) -> None:
        self._refuse_create(rp)

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        self._refuse_create(rp)

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        self._refuse_create(rp)

    def _refuse_create(self, rp: ResolvingPath) -> None:
        """Fails a creation as Linux does in /proc: EEXIST for an existing
        name, else EACCES/EROFS from the directory's permissions."""
        if rp.done():
            raise SyscallError(errno.EEXIST)
        parent = self._walk_parent(rp)
        name = rp.component()
        assert isinstance(parent.inode, DirInode)
        if name in (b".", b"..") or parent.inode.lookup(rp.task, name) is not None:
            raise SyscallError(errno.EEXIST)
        rp.mount.check_begin_write()
        parent.inode.check_permissions(rp.creds, MAY_WRITE | MAY_EXEC)
        raise SyscallError(errno.EPERM)

    def unlink_at(self, rp: ResolvingPath) -> None:
        self._refuse_remove(rp)

    def rmdir_at(self, rp: ResolvingPath) -> None:
        self._refuse_remove(rp)

    def rename_at(
        self,
        rp: ResolvingPath,
        old_parent: VirtualDentry,
        old_name: bytes,
        opts: object,
    ) -> None:
        if old_parent.mount is not rp.mount:
            raise SyscallError(errno.EXDEV)
        self._refuse_remove(rp)

    def _refuse_remove(self, rp: ResolvingPath) -> None:
        if rp.done():
            raise SyscallError(errno.EBUSY)
        parent = self._walk_parent(rp)
        rp.mount.check_begin_write()
        assert isinstance(parent.inode, DirInode)
        parent.inode.check_permissions(rp.creds, MAY_WRITE | MAY_EXEC)
        raise SyscallError(errno.EPERM)

    # Opening.

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        if flags & F.O_TMPFILE == F.O_TMPFILE:
            self._resolve(rp)
            raise SyscallError(errno.EOPNOTSUPP)
        if flags & F.O_CREAT and flags & F.O_EXCL and not rp.done():
            # The name exists or cannot be made: both fail.
            try:
                self._resolve(rp)
            except SyscallError as e:
                if e.errno != errno.ENOENT:
                    raise
                raise SyscallError(errno.EACCES) from None
            raise SyscallError(errno.EEXIST)
        if flags & F.O_PATH:
            d, f = self._resolve_file(rp)
            if f is not None:
                # TODO(#5): an O_PATH handle on a file without a path.
                f.dec_ref()
                raise SyscallError(errno.ENXIO)
            assert d is not None
            if flags & F.O_DIRECTORY and not isinstance(d.inode, DirInode):
                raise SyscallError(errno.ENOTDIR)
            return OpathFD(VirtualDentry(rp.mount, d), flags)
        d, f = self._resolve_file(rp)
        if f is not None:
            try:
                return f.reopen(rp.task, flags)  # type: ignore[arg-type]
            finally:
                f.dec_ref()
        assert d is not None
        inode = d.inode
        if flags & F.O_DIRECTORY and not isinstance(inode, DirInode):
            raise SyscallError(errno.ENOTDIR)
        if isinstance(inode, SymlinkInode):
            raise SyscallError(errno.ELOOP)
        uid, gid = inode.owner()
        check_open(rp.creds, rp.mount, flags, opts.for_exec, inode.mode_now(), uid, gid)
        if flags & F.O_ACCMODE != F.O_RDONLY:
            # Files may refuse writers the mode alone would let in (root).
            inode.check_permissions(rp.creds, MAY_WRITE)
        vd = VirtualDentry(rp.mount, d)
        if isinstance(inode, DirInode):
            # A directory may refuse readers its mode lets in (proc's
            # hidepid=).
            inode.check_permissions(rp.creds, MAY_READ)
            return KernfsDirFD(self, d, flags, vd)
        if isinstance(inode, DeviceInode):
            return inode.open(rp.task, vd, flags)
        assert isinstance(inode, DataInode)
        return KernfsDataFD(self, inode, flags, vd)


class _PathlessTarget(Exception):
    """A magic link leads to an open file without a path."""

    def __init__(self, file: FileDescription) -> None:
        super().__init__()
        self.file = file


class KernfsDataFD(FileDescription):
    """KernfsDataFD is an open generated file. Its contents are rendered
    when it is read from offset 0 and kept for reads further on, so that a
    reader sees one consistent snapshot (seq_file)."""

    __slots__ = ("_data", "fs", "inode")

    def __init__(
        self,
        fs: KernfsFilesystem,
        inode: DataInode,
        flags: int,
        vd: VirtualDentry,
    ) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.fs = fs
        self.inode = inode
        self._data: bytes | None = None

    def _contents(self, t: Task | None, offset: int) -> bytes:
        if offset == 0 or self._data is None:
            if not self.inode.valid():
                raise SyscallError(errno.ESRCH)
            self._data = self.inode.generate(t)[:MAX_FILE_SIZE]
        return self._data

    def read(self, t: Task, length: int) -> bytes:
        if not self.readable:
            raise SyscallError(errno.EBADF)
        with self.pos_mu:
            chunk = self._pread_locked(t, length, self.offset)
            self.offset += len(chunk)
            return chunk

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        if not self.readable:
            raise SyscallError(errno.EBADF)
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        with self.pos_mu:
            return self._pread_locked(t, length, offset)

    def _pread_locked(self, t: Task, length: int, offset: int) -> bytes:
        direct = self.inode.pread(t, length, offset)
        if direct is not None:
            return direct
        data = self._contents(t, offset)
        return data[offset : offset + length]

    def write(self, t: Task, data: bytes) -> int:
        if not self.writable:
            raise SyscallError(errno.EBADF)
        with self.pos_mu:
            n = self.inode.write(t, data, self.offset)
            self.offset += n
            return n

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        if not self.writable:
            raise SyscallError(errno.EBADF)
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        return self.inode.write(t, data, offset)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        inode = self.inode
        size = inode.size if inode.seekable_end() else None
        with self.pos_mu:
            self.offset = generic_llseek(self.offset, offset, whence, size)
            return self.offset

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.inode.statx(self.fs)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self.inode.setstat(t, t.creds, opts)


class KernfsDirFD(DirectoryFD):
    """KernfsDirFD is an open kernfs directory; its offset counts entries
    (0 ".", 1 "..", then the children in order)."""

    __slots__ = ("dentry", "fs")

    def __init__(
        self,
        fs: KernfsFilesystem,
        dentry: KernfsDentry,
        flags: int,
        vd: VirtualDentry,
    ) -> None:
        super().__init__(flags, vd)
        self.fs = fs
        self.dentry = dentry

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        d = self.dentry
        inode = d.inode
        assert isinstance(inode, DirInode)
        with self.pos_mu:
            if not inode.valid():
                raise SyscallError(errno.ENOENT)
            parent = d.parent if d.parent is not None else d
            if not self.emit_dots_locked(cb, inode.ino, parent.inode.ino):
                return
            entries = [
                (name, S.dirent_type(child.mode), child.ino)
                for name, child in inode.entries(t)
            ]
            self.emit_listing_locked(cb, entries)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.dentry.inode.statx(self.fs)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self.dentry.inode.setstat(t, t.creds, opts)

    def sync(self, t: Task) -> None:
        return
