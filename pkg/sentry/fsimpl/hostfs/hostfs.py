"""hostfs: a host directory tree served read-only, by path.

TEMPORARY: this is the sandbox's root until the gofer-backed overlay
replaces it (#5, gofer). It lets the sentry run programs from the host's
file tree today, and it is the only way the sentry opens host paths after
start-up.

Safety rules, the gofer's in small:

- every host file is opened relative to its parent directory's descriptor,
  one component at a time, with O_NOFOLLOW, starting from a descriptor of
  the served root; host symbolic links are never followed by the host: they
  are read with readlinkat and handed to the VFS, which resolves them inside
  the sandbox (so a link pointing at "/" points at the sandbox's root);
- nothing is ever written: the filesystem is read-only (EROFS);
- host FIFOs, sockets and devices may be looked at but not opened (EPERM).

Attributes come from the host on each lookup (fstatat with
AT_SYMLINK_NOFOLLOW). Device numbers are the sandbox's own: one anonymous
device per host device, so (st_dev, st_ino) pairs stay unique.
"""

from __future__ import annotations

import collections
import errno as host_errno
import logging
import os
import stat as host_stat
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.abi.linux.mman import PROT_EXEC
from pkg.errors.syscall_error import SyscallError, from_os_error
from pkg.sentry.mm.file_cache import FileCache, HostFdBacking
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.vfs.dentry import Dentry, NamedDentry, VirtualDentry
from pkg.sentry.vfs.directory_fd import DirectoryFD, DirEntry
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.filesystem import Filesystem, FilesystemType
from pkg.sentry.vfs.llseek import generic_llseek, host_data_or_hole
from pkg.sentry.vfs.lock import FileLocks
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.permissions import (
    MAY_EXEC,
    MAY_WRITE,
    check_open,
    check_search_dir,
    generic_check_permissions,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.pgalloc.memory_file import MemoryFile
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.filesystem import GetFilesystemOptions
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

log = logging.getLogger(__name__)

# Directory descriptors kept open for walking.
_DIR_FD_CACHE = 64
_MAX_READ = 1 << 20
_OPEN_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class HostfsType(FilesystemType):
    """HostfsType serves the host directory named by the mount source (or
    by GetFilesystemOptions.internal, a path string); mf holds the page
    caches of mmapped files."""

    name = "hostfs"

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        path = opts.internal if isinstance(opts.internal, str) else opts.source
        try:
            root_fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise from_os_error(e) from None
        fs = HostFilesystem(vfs, self, root_fd, self.mf)
        return fs, fs.root


class HostDentry(NamedDentry):
    """HostDentry is a host file, named by its parent and name.

    Attributes hold the host's answers from the last lookup.
    """

    __slots__ = (
        "children",
        "gid",
        "host_dev",
        "ino",
        "locks",
        "mode",
        "uid",
    )

    def __init__(
        self, parent: HostDentry | None, name: bytes, st: os.stat_result
    ) -> None:
        super().__init__()
        self.parent = parent
        self.name = name
        self.children: dict[bytes, HostDentry] = {}
        self.locks = FileLocks()
        self.update(st)

    def update(self, st: os.stat_result) -> None:
        """Records fresh host attributes."""
        self.mode = st.st_mode
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.ino = st.st_ino
        self.host_dev = st.st_dev

    def is_dir(self) -> bool:
        return host_stat.S_ISDIR(self.mode)

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        """Checks access with the host's mode and owner."""
        generic_check_permissions(creds, ats, self.mode, self.uid, self.gid)


class HostFilesystem(Filesystem):
    """HostFilesystem is one served host tree."""

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        root_fd: int,
        mf: MemoryFile,
    ) -> None:
        super().__init__(vfs, fs_type, read_only=True)
        self._mf = mf
        self.mu = threading.RLock()
        self._root_fd = root_fd
        self._devs: dict[int, int] = {}
        self._dir_fds: collections.OrderedDict[HostDentry, int] = (
            collections.OrderedDict()
        )
        self.root = HostDentry(None, b"", os.fstat(root_fd))

    def vfs_mf(self) -> MemoryFile:
        """Returns the MemoryFile that page caches of this filesystem use."""
        return self._mf

    def release(self) -> None:
        with self.mu:
            for fd in self._dir_fds.values():
                os.close(fd)
            self._dir_fds.clear()
            os.close(self._root_fd)

    # Host access. All under mu.

    def _dev_minor(self, host_dev: int) -> int:
        minor = self._devs.get(host_dev)
        if minor is None:
            minor = self.vfs.get_anonymous_device_minor()
            self._devs[host_dev] = minor
        return minor

    def _dir_fd(self, d: HostDentry) -> int:
        """Returns an O_PATH descriptor of directory d, opened component by
        component from the root with O_NOFOLLOW."""
        if d.parent is None:
            return self._root_fd
        fd = self._dir_fds.get(d)
        if fd is not None:
            self._dir_fds.move_to_end(d)
            return fd
        parent_fd = self._dir_fd(d.parent)
        try:
            fd = os.open(d.name, _OPEN_PATH | os.O_DIRECTORY, dir_fd=parent_fd)
        except OSError as e:
            raise _host_error(e) from None
        self._dir_fds[d] = fd
        if len(self._dir_fds) > _DIR_FD_CACHE:
            _old, old_fd = self._dir_fds.popitem(last=False)
            os.close(old_fd)
        return fd

    def _forget_dir_fd(self, d: HostDentry) -> None:
        fd = self._dir_fds.pop(d, None)
        if fd is not None:
            os.close(fd)

    def _lookup(self, parent: HostDentry, name: bytes) -> HostDentry:
        """Returns parent's child name, asking the host whether it exists."""
        try:
            st = os.stat(name, dir_fd=self._dir_fd(parent), follow_symlinks=False)
        except OSError as e:
            child = parent.children.pop(name, None)
            if child is not None:
                self._forget_dir_fd(child)
            raise _host_error(e) from None
        child = parent.children.get(name)
        if child is None:
            child = HostDentry(parent, name, st)
            parent.children[name] = child
        else:
            if host_stat.S_IFMT(child.mode) != host_stat.S_IFMT(st.st_mode):
                self._forget_dir_fd(child)
            child.update(st)
        return child

    def _refresh(self, d: HostDentry) -> None:
        if d.parent is None:
            d.update(os.fstat(self._root_fd))
        else:
            self._lookup(d.parent, d.name)

    def _open_host(self, d: HostDentry, flags: int) -> int:
        """Opens d on the host with flags | O_NOFOLLOW."""
        assert d.parent is not None or flags & os.O_DIRECTORY
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            if d.parent is None:
                return os.open(".", flags, dir_fd=self._root_fd)
            return os.open(d.name, flags, dir_fd=self._dir_fd(d.parent))
        except OSError as e:
            raise _host_error(e) from None

    def statx(self, d: HostDentry) -> S.Statx:
        """Returns d's attributes as the sandbox sees them."""
        fd = self._dir_fd(d.parent) if d.parent is not None else self._root_fd
        try:
            if d.parent is None:
                st = os.fstat(fd)
            else:
                st = os.stat(d.name, dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            raise _host_error(e) from None
        d.update(st)
        return S.statx_from_host(st, 0, self._dev_minor(st.st_dev))

    # Walking.

    def _step(self, rp: ResolvingPath, d: HostDentry) -> HostDentry:
        if not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        d.check_permissions(rp.creds, MAY_EXEC)
        reached = rp.handle_dots(d, d.parent)
        if reached is not None:
            return reached
        name = rp.component()
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        child = self._lookup(d, name)
        rp.check_mount(child)
        if host_stat.S_ISLNK(child.mode) and rp.should_follow_symlink():
            rp.handle_symlink(self._readlink(child))
            return d
        rp.advance()
        return child

    def _resolve(self, rp: ResolvingPath) -> HostDentry:
        d = rp.start
        assert isinstance(d, HostDentry)
        while not rp.done():
            d = self._step(rp, d)
        if rp.must_be_dir() and not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        return d

    def _walk_parent(self, rp: ResolvingPath) -> HostDentry:
        d = rp.start
        assert isinstance(d, HostDentry)
        while not rp.done() and not rp.final():
            d = self._step(rp, d)
        if not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if not rp.done():
            d.check_permissions(rp.creds, MAY_EXEC)
        return d

    def _readlink(self, d: HostDentry) -> bytes:
        assert d.parent is not None
        try:
            return os.readlink(d.name, dir_fd=self._dir_fd(d.parent))
        except OSError as e:
            raise _host_error(e) from None

    def _exists(self, parent: HostDentry, name: bytes) -> bool:
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        try:
            self._lookup(parent, name)
        except SyscallError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    # Read-only path operations: what exists is reported, then EROFS.

    def _refuse_create(self, rp: ResolvingPath) -> None:
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EEXIST)
            parent = self._walk_parent(rp)
            name = rp.component()
            if name in (b".", b"..") or self._exists(parent, name):
                raise SyscallError(errno.EEXIST)
        raise SyscallError(errno.EROFS)

    def _refuse_delete(
        self, rp: ResolvingPath, at_root: int, dot: int, dotdot: int
    ) -> None:
        """Fails a removal with the errno Linux gives for a name that cannot
        be removed ("/", ".", ".."), else with EROFS."""
        with self.mu:
            if rp.done():
                raise SyscallError(at_root)
            self._walk_parent(rp)
            name = rp.component()
        if name == b".":
            raise SyscallError(dot)
        if name == b"..":
            raise SyscallError(dotdot)
        raise SyscallError(errno.EROFS)

    def mkdir_at(self, rp: ResolvingPath, opts: MkdirOptions) -> None:
        self._refuse_create(rp)

    def mknod_at(self, rp: ResolvingPath, opts: MknodOptions) -> None:
        self._refuse_create(rp)

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        self._refuse_create(rp)

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        self._refuse_create(rp)

    def rename_at(
        self,
        rp: ResolvingPath,
        old_parent: VirtualDentry,
        old_name: bytes,
        opts: RenameOptions,
    ) -> None:
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EBUSY)
            self._walk_parent(rp)
            if old_parent.mount is not rp.mount:
                raise SyscallError(errno.EXDEV)
            if rp.component() in (b".", b".."):
                raise SyscallError(errno.EBUSY)
        raise SyscallError(errno.EROFS)

    def rmdir_at(self, rp: ResolvingPath) -> None:
        self._refuse_delete(rp, errno.EBUSY, errno.EINVAL, errno.ENOTEMPTY)

    def unlink_at(self, rp: ResolvingPath) -> None:
        self._refuse_delete(rp, errno.EISDIR, errno.EISDIR, errno.EISDIR)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        with self.mu:
            self._resolve(rp)
        raise SyscallError(errno.EROFS)

    def setxattr_at(self, rp: ResolvingPath, opts: SetXattrOptions) -> None:
        with self.mu:
            self._resolve(rp)
        raise SyscallError(errno.EROFS)

    def removexattr_at(self, rp: ResolvingPath, name: bytes) -> None:
        with self.mu:
            self._resolve(rp)
        raise SyscallError(errno.EROFS)

    # Reading path operations.

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
        if ats & MAY_WRITE and host_stat.S_IFMT(d.mode) in (
            S.S_IFREG,
            S.S_IFDIR,
            S.S_IFLNK,
        ):
            raise SyscallError(errno.EROFS)
        d.check_permissions(rp.creds, ats)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        with self.mu:
            d = self._resolve(rp)
            if not host_stat.S_ISLNK(d.mode):
                raise SyscallError(errno.EINVAL)
            return self._readlink(d)

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        with self.mu:
            return self.statx(self._resolve(rp))

    def statfs_at(self, rp: ResolvingPath) -> FS.Statfs:
        with self.mu:
            d = self._resolve(rp)
            fd = self._dir_fd(d) if d.is_dir() else self._dir_fd(d.parent or d)
            try:
                st = os.statvfs(fd)
            except OSError as e:
                raise _host_error(e) from None
        return FS.Statfs(
            type=FS.V9FS_MAGIC,
            block_size=st.f_bsize,
            blocks=st.f_blocks,
            blocks_free=st.f_bfree,
            blocks_available=st.f_bavail,
            files=st.f_files,
            files_free=st.f_ffree,
            name_length=st.f_namemax,
            fragment_size=st.f_frsize,
        )

    def listxattr_at(self, rp: ResolvingPath) -> list[bytes]:
        with self.mu:
            self._resolve(rp)
        return []

    def getxattr_at(self, rp: ResolvingPath, name: bytes) -> bytes:
        with self.mu:
            self._resolve(rp)
        raise SyscallError(errno.ENODATA)

    # Opening.

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        with self.mu:
            if flags & F.O_TMPFILE == F.O_TMPFILE:
                self._resolve(rp)
                raise SyscallError(errno.EROFS)
            if flags & F.O_CREAT and not flags & F.O_PATH:
                d = self._resolve_create(rp, flags)
            else:
                d = self._resolve(rp)
            vd = VirtualDentry(rp.mount, d)
            if flags & F.O_PATH:
                if flags & F.O_DIRECTORY and not d.is_dir():
                    raise SyscallError(errno.ENOTDIR)
                return OpathFD(vd, flags)
            if flags & F.O_DIRECTORY and not d.is_dir():
                raise SyscallError(errno.ENOTDIR)
            check_open(rp.creds, rp.mount, flags, opts.for_exec, d.mode, d.uid, d.gid)
            fmt = host_stat.S_IFMT(d.mode)
            if fmt == S.S_IFDIR:
                fd = self._open_host(d, os.O_RDONLY | os.O_DIRECTORY)
                return HostDirectoryFD(self, d, fd, flags, vd)
            if fmt == S.S_IFREG:
                fd = self._open_host(d, os.O_RDONLY | os.O_NONBLOCK)
                if not host_stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise SyscallError(errno.EAGAIN)
                return HostRegularFD(self, d, fd, flags, vd)
        # Host FIFOs, sockets and devices stay on the host.
        raise SyscallError(errno.EPERM)

    def _resolve_create(self, rp: ResolvingPath, flags: int) -> HostDentry:
        """Resolves rp for O_CREAT: an existing file opens; creating one
        fails with EROFS."""
        if rp.done():
            d = rp.start
            assert isinstance(d, HostDentry)
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            if d.is_dir():
                raise SyscallError(errno.EISDIR)
            return d
        while True:
            parent = self._walk_parent(rp)
            name = rp.component()
            if name in (b".", b"..") or rp.must_be_dir():
                raise SyscallError(errno.EISDIR)
            if not self._exists(parent, name):
                raise SyscallError(errno.EROFS)
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            child = parent.children[name]
            rp.check_mount(child)
            if host_stat.S_ISLNK(child.mode):
                if rp.should_follow_symlink():
                    rp.handle_symlink(self._readlink(child))
                    rp.start = parent
                    continue
                raise SyscallError(errno.ELOOP)
            if child.is_dir():
                raise SyscallError(errno.EISDIR)
            rp.advance()
            return child


def _host_error(e: OSError) -> SyscallError:
    """Converts a host error met while walking. A host ELOOP means a
    component became a symlink under us: report ENOENT, never follow."""
    if e.errno == host_errno.ELOOP:
        return SyscallError(errno.ENOENT)
    return from_os_error(e)


class _HostFD(FileDescription):
    """_HostFD owns one host descriptor of a hostfs file."""

    __slots__ = ("dentry", "fs", "host_fd")

    def __init__(
        self,
        fs: HostFilesystem,
        d: HostDentry,
        host_fd: int,
        flags: int,
        vd: VirtualDentry,
    ) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.fs = fs
        self.dentry = d
        self.host_fd = host_fd

    def release(self) -> None:
        os.close(self.host_fd)

    def stat(self, t: Task, mask: int) -> S.Statx:
        try:
            st = os.fstat(self.host_fd)
        except OSError as e:
            raise from_os_error(e) from None
        with self.fs.mu:
            return S.statx_from_host(st, 0, self.fs._dev_minor(st.st_dev))

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        raise SyscallError(errno.EROFS)

    def sync(self, t: Task) -> None:
        return

    def file_locks(self) -> FileLocks | None:
        return self.dentry.locks


class HostRegularFD(_HostFD):
    """HostRegularFD is an open host regular file (read-only). mmap maps a
    page cache of it (a FileCache over the host descriptor), made on the
    first mmap and kept while the open file lives; the file is never
    written, so the cache never writes back."""

    __slots__ = ("_cache",)

    def __init__(
        self,
        fs: HostFilesystem,
        d: HostDentry,
        host_fd: int,
        flags: int,
        vd: VirtualDentry,
    ) -> None:
        super().__init__(fs, d, host_fd, flags, vd)
        self._cache: FileCache | None = None

    def release(self) -> None:
        if self._cache is not None:
            self._cache.dec_ref()
        super().release()

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        assert self.vd is not None
        if self.vd.mount.flags & MS.MS_NOEXEC:
            if opts.prot & PROT_EXEC:
                raise SyscallError(errno.EPERM)
            opts.max_prot &= ~PROT_EXEC
        with self.pos_mu:
            if self._cache is None:
                self._cache = FileCache(self.fs.vfs_mf(), HostFdBacking(self.host_fd))
        opts.mappable = self._cache
        st = os.fstat(self.host_fd)
        path = self.vd.mount.vfs.path_for_display(self.vd).decode(errors="replace")
        with self.fs.mu:
            minor = self.fs._dev_minor(st.st_dev)
        opts.identity = MappingIdentity(S.make_dev(0, minor), st.st_ino, path)

    def read(self, t: Task, length: int) -> bytes:
        with self.pos_mu:
            data = self.pread(t, length, self.offset)
            self.offset += len(data)
        return data

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        try:
            return os.pread(self.host_fd, min(length, _MAX_READ), offset)
        except OSError as e:
            raise from_os_error(e) from None

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            self.offset = generic_llseek(
                self.offset,
                offset,
                whence,
                lambda: os.fstat(self.host_fd).st_size,
                host_data_or_hole(self.host_fd),
            )
            return self.offset

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            size = os.fstat(self.host_fd).st_size
            with self.pos_mu:
                n = max(0, size - self.offset)
            t.mm.write_i32(arg, min(n, 0x7FFFFFFF))
            return 0
        raise SyscallError(errno.ENOTTY)


class HostDirectoryFD(_HostFD, DirectoryFD):
    """HostDirectoryFD is an open host directory. The entries are read from
    the host when reading starts at offset 0; offsets index that list after
    "." and ".."."""

    __slots__ = ("_entries",)

    def __init__(
        self,
        fs: HostFilesystem,
        d: HostDentry,
        host_fd: int,
        flags: int,
        vd: VirtualDentry,
    ) -> None:
        super().__init__(fs, d, host_fd, flags, vd)
        self._entries: list[DirEntry] | None = None

    def _load(self) -> list[DirEntry]:
        out: list[DirEntry] = []
        try:
            # scandir reads through a duplicate sharing our offset.
            os.lseek(self.host_fd, 0, os.SEEK_SET)
            with os.scandir(self.host_fd) as it:
                for e in it:
                    if e.is_symlink():
                        dt = S.DT_LNK
                    elif e.is_dir(follow_symlinks=False):
                        dt = S.DT_DIR
                    elif e.is_file(follow_symlinks=False):
                        dt = S.DT_REG
                    else:
                        try:
                            dt = S.dirent_type(e.stat(follow_symlinks=False).st_mode)
                        except OSError:
                            dt = S.DT_UNKNOWN
                    out.append((os.fsencode(e.name), dt, e.inode()))
        except OSError as e:
            raise from_os_error(e) from None
        return out

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        d = self.dentry
        with self.pos_mu:
            if self._entries is None or self.offset == 0:
                self._entries = self._load()
            parent = d.parent if d.parent is not None else d
            if self.emit_dots_locked(cb, d.ino, parent.ino):
                self.emit_listing_locked(cb, self._entries)
