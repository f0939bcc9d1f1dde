"""tmpfs: a filesystem held in memory, with file contents in the
MemoryFile (mm/shmem.c).

All names and attributes change under the filesystem's one lock (`mu`), as
gVisor's tmpfs does: path walks are short and Python serialises the sentry
anyway. File contents have their own lock per file (regular_file.py), so
reads and writes of different files do not contend.

Mount options (mount(2) data): size=N[k|m|g|%], nr_inodes=N[k|m|g],
mode=OCTAL, uid=N, gid=N. Unknown options fail with EINVAL, as on Linux.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipefs import PipeFD
from pkg.sentry.fsimpl.tmpfs.directory import DirectoryFD
from pkg.sentry.fsimpl.tmpfs.inode import (
    DeviceNode,
    Directory,
    Fifo,
    Inode,
    SocketNode,
    Symlink,
    TmpfsDentry,
)
from pkg.sentry.fsimpl.tmpfs.regular_file import RegularFile, RegularFileFD
from pkg.sentry.vfs.dentry import INOTIFY_PATH_EVENT, Dentry, VirtualDentry
from pkg.sentry.vfs.device import BLOCK_DEVICE, CHAR_DEVICE
from pkg.sentry.vfs.filesystem import (
    Filesystem,
    FilesystemType,
    GetFilesystemOptions,
    parse_mount_data,
)
from pkg.sentry.vfs.inode_attrs import setstat_events
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.permissions import (
    MAY_EXEC,
    MAY_WRITE,
    check_mknod,
    check_open,
    check_search_dir,
    init_owner,
    may_create,
    may_delete,
)
from pkg.sentry.vfs.rename import check_rename_targets, may_rename

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.pgalloc.memory_file import MemoryFile
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.mount import Mount
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

PAGE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class TmpfsOptions:
    """TmpfsOptions are options from inside the sentry (internal data of
    GetFilesystemOptions), which take precedence over the data string.

    Attributes:
        root_mode: the root directory's permission bits.
        root_uid, root_gid: its owner (None: the mounter's fs ids).
        size: the size limit in bytes (None: half of the host's memory).
    """

    root_mode: int = 0o1777
    root_uid: int | None = None
    root_gid: int | None = None
    size: int | None = None


def _parse_size(value: str, total: int) -> int:
    """Parses a size option: a number with an optional k/m/g/t/p/e suffix or
    a percentage of total."""
    if not value:
        raise SyscallError(errno.EINVAL)
    mult = 1
    suffix = value[-1].lower()
    if suffix == "%":
        digits = value[:-1]
        if not digits.isdigit():
            raise SyscallError(errno.EINVAL)
        return total * int(digits) // 100
    if suffix in "kmgtpe":
        mult = 1 << (10 * ("kmgtpe".index(suffix) + 1))
        value = value[:-1]
    try:
        n = int(value, 0)
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    if n < 0:
        raise SyscallError(errno.EINVAL)
    return n * mult


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 32


def _isdir(d: TmpfsDentry) -> int:
    return IN.IN_ISDIR if isinstance(d.inode, Directory) else 0


class TmpfsType(FilesystemType):
    """TmpfsType makes tmpfs filesystems; mf is where their contents
    live."""

    name = "tmpfs"

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        internal = opts.internal if isinstance(opts.internal, TmpfsOptions) else None
        internal = internal or TmpfsOptions()
        mode = internal.root_mode
        uid = creds.fsuid if internal.root_uid is None else internal.root_uid
        gid = creds.fsgid if internal.root_gid is None else internal.root_gid
        total = _host_memory()
        size = internal.size if internal.size is not None else total // 2
        max_inodes = 0
        for key, value in parse_mount_data(opts.data).items():
            if key == "size":
                size = _parse_size(value, total)
            elif key == "nr_inodes":
                max_inodes = _parse_size(value, total)
            elif key == "mode":
                try:
                    mode = int(value, 8) & S.S_IALLUGO
                except ValueError:
                    raise SyscallError(errno.EINVAL) from None
            elif key in ("uid", "gid"):
                try:
                    n = int(value)
                except ValueError:
                    raise SyscallError(errno.EINVAL) from None
                if n < 0:
                    raise SyscallError(errno.EINVAL)
                if key == "uid":
                    uid = n
                else:
                    gid = n
            else:
                raise SyscallError(errno.EINVAL)
        fs = TmpfsFilesystem(vfs, self, self.mf, size, max_inodes, mode, uid, gid)
        return fs, fs.root


class TmpfsFilesystem(Filesystem):
    """TmpfsFilesystem is one tmpfs instance.

    Attributes:
        mu: guards the tree, names and link counts.
        mf: the MemoryFile holding file contents.
        root: the root directory's dentry.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        mf: MemoryFile,
        size_limit: int,
        max_inodes: int,
        root_mode: int,
        root_uid: int,
        root_gid: int,
    ) -> None:
        super().__init__(vfs, fs_type)
        self.mu = threading.RLock()
        self.mf = mf
        self.size_limit = size_limit
        self.max_inodes = max_inodes
        self._inos = itertools.count(1)
        self._pages_used = 0
        self._inodes = 0
        self._usage_mu = threading.Lock()
        self.root = TmpfsDentry(
            Directory(self, root_mode, root_uid, root_gid), None, b""
        )

    def next_ino(self) -> int:
        """Returns a fresh inode number."""
        with self._usage_mu:
            self._inodes += 1
            return next(self._inos)

    def charge(self, pages: int) -> None:
        """Accounts pages of file contents against the size limit.

        Raises:
            SyscallError: ENOSPC past the limit.
        """
        with self._usage_mu:
            if (self._pages_used + pages) * PAGE_SIZE > self.size_limit:
                raise SyscallError(errno.ENOSPC)
            self._pages_used += pages

    def uncharge(self, pages: int) -> None:
        """Gives back what charge took."""
        with self._usage_mu:
            self._pages_used -= pages

    def mount_options(self) -> str:
        return f"size={self.size_limit // 1024}k"

    def release(self) -> None:
        """Frees the contents of every file: the last mount is gone, and
        with it every open file and mapping (they hold the mount)."""
        with self.mu:
            work = [self.root]
            while work:
                d = work.pop()
                inode = d.inode
                if isinstance(inode, Directory):
                    work.extend(inode.children.values())
                elif isinstance(inode, RegularFile):
                    inode.release_contents()

    # Walking. Every helper here runs with mu held.

    def _step(self, rp: ResolvingPath, d: TmpfsDentry) -> TmpfsDentry:
        """Resolves rp's current component from directory d."""
        inode = d.inode
        if not isinstance(inode, Directory):
            raise SyscallError(errno.ENOTDIR)
        inode.check_permissions(rp.creds, MAY_EXEC)
        reached = rp.handle_dots(d, d.parent)
        if reached is not None:
            return reached
        name = rp.component()
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        child = inode.children.get(name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        rp.check_mount(child)
        if isinstance(child.inode, Symlink) and rp.should_follow_symlink():
            rp.handle_symlink(child.inode.target)
            return d
        rp.advance()
        return child

    def _resolve(self, rp: ResolvingPath) -> TmpfsDentry:
        """Resolves every component of rp."""
        d = rp.start
        assert isinstance(d, TmpfsDentry)
        while not rp.done():
            d = self._step(rp, d)
        if rp.must_be_dir() and not isinstance(d.inode, Directory):
            raise SyscallError(errno.ENOTDIR)
        return d

    def _walk_parent(self, rp: ResolvingPath) -> TmpfsDentry:
        """Resolves every component of rp but the last; returns the
        directory that holds the last, which the caller may look up."""
        d = rp.start
        assert isinstance(d, TmpfsDentry)
        while not rp.done() and not rp.final():
            d = self._step(rp, d)
        if not isinstance(d.inode, Directory):
            raise SyscallError(errno.ENOTDIR)
        if not rp.done():
            d.inode.check_permissions(rp.creds, MAY_EXEC)
        return d

    @staticmethod
    def _dir(d: TmpfsDentry) -> Directory:
        inode = d.inode
        assert isinstance(inode, Directory)
        return inode

    def _lookup_last(
        self, rp: ResolvingPath, parent: TmpfsDentry
    ) -> TmpfsDentry | None:
        name = rp.component()
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        return self._dir(parent).children.get(name)

    # Creation.

    def _check_create(
        self, rp: ResolvingPath, is_dir: bool, link_source: Mount | None = None
    ) -> tuple[TmpfsDentry, bytes]:
        """Walks to the parent of a file to create and checks that it may be
        created there (filename_create, may_create); link_source is the mount
        of the file link(2) links to. Returns (parent, name).
        """
        if rp.done():
            raise SyscallError(errno.EEXIST)
        parent = self._walk_parent(rp)
        name = rp.component()
        if name in (b".", b".."):
            raise SyscallError(errno.EEXIST)
        exists = self._lookup_last(rp, parent) is not None
        may_create(rp, parent, self._dir(parent), exists, is_dir, link_source)
        return parent, name

    def _insert(self, parent: TmpfsDentry, name: bytes, inode: Inode) -> TmpfsDentry:
        d = TmpfsDentry(inode, parent, name)
        pdir = self._dir(parent)
        pdir.insert(d)
        pdir.touch_cmtime()
        d.inotify_with_parent(IN.IN_CREATE | _isdir(d), 0, INOTIFY_PATH_EVENT)
        return d

    def _create(
        self,
        rp: ResolvingPath,
        is_dir: bool,
        make: Callable[[int, int, int], Inode],
        mode: int,
    ) -> TmpfsDentry:
        with self.mu:
            parent, name = self._check_create(rp, is_dir)
            mode, uid, gid = init_owner(rp.creds, self._dir(parent), mode, is_dir)
            return self._insert(parent, name, make(mode, uid, gid))

    def mkdir_at(self, rp: ResolvingPath, opts: MkdirOptions) -> None:
        self._create(
            rp,
            True,
            lambda mode, uid, gid: Directory(self, mode, uid, gid),
            opts.mode & (S.S_IRWXUGO | S.S_ISVTX),
        )

    def mknod_at(self, rp: ResolvingPath, opts: MknodOptions) -> None:
        fmt = opts.mode & S.S_IFMT
        perm = opts.mode & S.S_IALLUGO

        def make(mode: int, uid: int, gid: int) -> Inode:
            if fmt in (S.S_IFREG, 0):
                return RegularFile(self, mode, uid, gid)
            if fmt == S.S_IFIFO:
                return Fifo(self, mode, uid, gid)
            if fmt in (S.S_IFCHR, S.S_IFBLK):
                return DeviceNode(
                    self, fmt | mode, uid, gid, opts.dev_major, opts.dev_minor
                )
            if fmt == S.S_IFSOCK:
                return SocketNode(self, mode, uid, gid, opts.endpoint)
            raise SyscallError(errno.EINVAL)

        with self.mu:
            parent, name = self._check_create(rp, False)
            check_mknod(rp.creds, opts.mode, opts.dev_major, opts.dev_minor)
            mode, uid, gid = init_owner(rp.creds, self._dir(parent), perm, False)
            self._insert(parent, name, make(mode, uid, gid))

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        self._create(
            rp, False, lambda _m, uid, gid: Symlink(self, uid, gid, target), 0o777
        )

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        with self.mu:
            parent, name = self._check_create(rp, False, old.mount)
            target = old.dentry
            assert isinstance(target, TmpfsDentry)
            inode = target.inode
            if isinstance(inode, Directory):
                raise SyscallError(errno.EPERM)
            if inode.nlink == 0 and not (
                isinstance(inode, RegularFile) and inode.linkable
            ):
                raise SyscallError(errno.ENOENT)
            with inode.attr_mu:
                inode.nlink += 1
            if isinstance(inode, RegularFile):
                inode.linkable = False
            inode.touch_ctime()
            # The link count changed (fsnotify_link's IN_ATTRIB).
            target.inotify_inode(IN.IN_ATTRIB)
            self._insert(parent, name, inode)

    # Removal.

    def _drop_link(self, d: TmpfsDentry, replaced: bool = False) -> None:
        """Accounts for d's name going away (after its removal, or a rename
        over it)."""
        inode = d.inode
        with inode.attr_mu:
            if isinstance(inode, Directory):
                inode.nlink = 0
            else:
                inode.nlink -= 1
            gone = inode.nlink == 0
        inode.touch_ctime()
        d.inotify_link_count(gone, replaced)
        if gone:
            inode.on_unlinked()

    def unlink_at(self, rp: ResolvingPath) -> None:
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EISDIR)
            parent = self._walk_parent(rp)
            if rp.component() in (b".", b".."):
                raise SyscallError(errno.EISDIR)
            rp.mount.check_begin_write()
            child = self._lookup_last(rp, parent)
            if child is None:
                raise SyscallError(errno.ENOENT)
            if rp.must_be_dir():
                raise SyscallError(
                    errno.EISDIR
                    if isinstance(child.inode, Directory)
                    else errno.ENOTDIR
                )
            may_delete(rp.creds, parent.inode, child, child.inode.uid, is_dir=False)
            self.vfs.delete_dentry(child)
            pdir = self._dir(parent)
            pdir.remove(child)
            pdir.touch_cmtime()
            # The file's own events come before its directory's, as
            # d_delete_notify orders them.
            self._drop_link(child)
            child.inotify_with_parent(IN.IN_DELETE, 0, INOTIFY_PATH_EVENT)

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
            child = self._lookup_last(rp, parent)
            if child is None:
                raise SyscallError(errno.ENOENT)
            may_delete(rp.creds, parent.inode, child, child.inode.uid, is_dir=True)
            if child.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            if self._dir(child).children:
                raise SyscallError(errno.ENOTEMPTY)
            self.vfs.delete_dentry(child)
            pdir = self._dir(parent)
            pdir.remove(child)
            pdir.touch_cmtime()
            self._drop_link(child)
            child.inotify_with_parent(IN.IN_DELETE | IN.IN_ISDIR, 0, INOTIFY_PATH_EVENT)

    def rename_at(
        self,
        rp: ResolvingPath,
        old_parent: VirtualDentry,
        old_name: bytes,
        opts: RenameOptions,
    ) -> None:
        exchange = bool(opts.flags & F.RENAME_EXCHANGE)
        with self.mu:
            if rp.done():
                raise SyscallError(errno.EBUSY)
            new_parent = self._walk_parent(rp)
            new_name = rp.component()
            if old_parent.mount is not rp.mount:
                raise SyscallError(errno.EXDEV)
            if new_name in (b".", b".."):
                raise SyscallError(errno.EBUSY)
            rp.mount.check_begin_write()
            op = old_parent.dentry
            assert isinstance(op, TmpfsDentry)
            if len(old_name) > FS.NAME_MAX:
                raise SyscallError(errno.ENAMETOOLONG)
            renamed = self._dir(op).children.get(old_name)
            if renamed is None:
                raise SyscallError(errno.ENOENT)
            replaced = self._lookup_last(rp, new_parent)
            check_rename_targets(rp, opts, op, renamed, new_parent, replaced)
            if replaced is not None and replaced.inode is renamed.inode:
                # Hard links to one file: nothing to do.
                return
            may_rename(rp.creds, opts, op, renamed, new_parent, replaced, _inode_of)
            if (
                not exchange
                and replaced is not None
                and replaced.is_dir()
                and self._dir(replaced).children
            ):
                raise SyscallError(errno.ENOTEMPTY)
            self.vfs.rename_dentry(renamed, replaced, exchange)
            self._do_rename(
                rp, op, old_name, renamed, new_parent, new_name, replaced, opts.flags
            )

    def _do_rename(
        self,
        rp: ResolvingPath,
        old_parent: TmpfsDentry,
        old_name: bytes,
        renamed: TmpfsDentry,
        new_parent: TmpfsDentry,
        new_name: bytes,
        replaced: TmpfsDentry | None,
        flags: int,
    ) -> None:
        odir = self._dir(old_parent)
        ndir = self._dir(new_parent)
        cookie = self.vfs.new_inotify_cookie()
        renamed.inotify_with_parent(
            IN.IN_MOVED_FROM | _isdir(renamed), cookie, INOTIFY_PATH_EVENT
        )
        odir.remove(renamed)
        if replaced is not None:
            ndir.remove(replaced)
        if flags & F.RENAME_EXCHANGE:
            assert replaced is not None
            replaced.parent = old_parent
            replaced.name = old_name
            odir.insert(replaced)
            replaced.inode.touch_ctime()
        elif replaced is not None:
            self._drop_link(replaced, replaced=True)
        renamed.parent = new_parent
        renamed.name = new_name
        ndir.insert(renamed)
        renamed.inode.touch_ctime()
        renamed.inotify_with_parent(
            IN.IN_MOVED_TO | _isdir(renamed), cookie, INOTIFY_PATH_EVENT
        )
        renamed.inotify_with_parent(IN.IN_MOVE_SELF)
        if flags & F.RENAME_WHITEOUT:
            creds = rp.creds
            whiteout = DeviceNode(
                self, S.S_IFCHR, creds.fsuid, creds.fsgid, 0, FS.WHITEOUT_DEV
            )
            odir.insert(TmpfsDentry(whiteout, old_parent, old_name))
        odir.touch_cmtime()
        ndir.touch_cmtime()

    # Other path operations.

    def get_dentry_at(self, rp: ResolvingPath, opts: GetDentryOptions) -> Dentry:
        with self.mu:
            d = self._resolve(rp)
            if opts.check_search_dir:
                check_search_dir(rp.creds, d, d.inode)
            return d

    def get_parent_dentry_at(self, rp: ResolvingPath) -> Dentry:
        with self.mu:
            return self._walk_parent(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        with self.mu:
            d = self._resolve(rp)
            inode = d.inode
        if ats & MAY_WRITE and inode.file_type in (S.S_IFREG, S.S_IFDIR, S.S_IFLNK):
            rp.mount.check_begin_write()
        inode.check_permissions(rp.creds, ats)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        with self.mu:
            d = self._resolve(rp)
            inode = d.inode
            if not isinstance(inode, Symlink):
                raise SyscallError(errno.EINVAL)
            inode.touch_atime()
            return inode.target

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        with self.mu:
            return self._resolve(rp).inode.statx()

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        with self.mu:
            d = self._resolve(rp)
            rp.mount.check_begin_write()
            d.inode.setstat(rp.task, rp.creds, opts)
        d.inotify_with_parent(setstat_events(opts))

    def statfs_at(self, rp: ResolvingPath) -> FS.Statfs:
        with self.mu:
            self._resolve(rp)
        blocks = self.size_limit // PAGE_SIZE
        free = max(0, blocks - self._pages_used)
        files = self.max_inodes or (blocks // 2 or 1)
        return FS.Statfs(
            type=FS.TMPFS_MAGIC,
            block_size=PAGE_SIZE,
            blocks=blocks,
            blocks_free=free,
            blocks_available=free,
            files=files,
            files_free=max(0, files - self._inodes),
            name_length=FS.NAME_MAX,
            fragment_size=PAGE_SIZE,
        )

    def listxattr_at(self, rp: ResolvingPath) -> list[bytes]:
        with self.mu:
            inode = self._resolve(rp).inode
        return inode.listxattr(rp.creds)

    def getxattr_at(self, rp: ResolvingPath, name: bytes) -> bytes:
        with self.mu:
            inode = self._resolve(rp).inode
        return inode.getxattr(rp.creds, name)

    def setxattr_at(self, rp: ResolvingPath, opts: SetXattrOptions) -> None:
        with self.mu:
            inode = self._resolve(rp).inode
            rp.mount.check_begin_write()
        inode.setxattr(rp.creds, opts)

    def removexattr_at(self, rp: ResolvingPath, name: bytes) -> None:
        with self.mu:
            inode = self._resolve(rp).inode
            rp.mount.check_begin_write()
        inode.removexattr(rp.creds, name)

    def bound_endpoint_at(self, rp: ResolvingPath) -> object:
        with self.mu:
            d = self._resolve(rp)
        inode = d.inode
        if isinstance(inode, Directory):
            raise SyscallError(errno.ECONNREFUSED)
        inode.check_permissions(rp.creds, MAY_WRITE)
        if not isinstance(inode, SocketNode) or inode.endpoint is None:
            raise SyscallError(errno.ECONNREFUSED)
        return inode.endpoint

    # Opening.

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        with self.mu:
            if flags & F.O_TMPFILE == F.O_TMPFILE:
                d = self._create_tmpfile(rp, opts)
                created = True
            elif flags & F.O_CREAT and not flags & F.O_PATH:
                d, created = self._open_create(rp, opts)
            else:
                d, created = self._resolve(rp), False
            if not created and not flags & F.O_PATH:
                inode = d.inode
                if flags & F.O_DIRECTORY and not isinstance(inode, Directory):
                    raise SyscallError(errno.ENOTDIR)
                check_open(
                    rp.creds,
                    rp.mount,
                    flags,
                    opts.for_exec,
                    inode.mode,
                    inode.uid,
                    inode.gid,
                )
        # Opening a FIFO may block: the lock is not held.
        return self._open(rp, d, opts, created)

    def _open_create(
        self, rp: ResolvingPath, opts: OpenOptions
    ) -> tuple[TmpfsDentry, bool]:
        """Resolves rp for O_CREAT, creating a regular file if the last
        component does not exist. Returns (dentry, created)."""
        flags = opts.flags
        if rp.done():
            d = rp.start
            assert isinstance(d, TmpfsDentry)
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            if isinstance(d.inode, Directory):
                raise SyscallError(errno.EISDIR)
            return d, False
        while True:
            parent = self._walk_parent(rp)
            name = rp.component()
            if name in (b".", b"..") or rp.must_be_dir():
                raise SyscallError(errno.EISDIR)
            child = self._lookup_last(rp, parent)
            if child is None:
                pdir = self._dir(parent)
                may_create(rp, parent, pdir, exists=False, is_dir=False)
                mode, uid, gid = init_owner(
                    rp.creds, pdir, opts.mode & S.S_IALLUGO, False
                )
                return self._insert(
                    parent, name, RegularFile(self, mode, uid, gid)
                ), True
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            rp.check_mount(child)
            if isinstance(child.inode, Symlink):
                if rp.should_follow_symlink():
                    rp.handle_symlink(child.inode.target)
                    # Continue from parent with the link's components.
                    rp.start = parent
                    continue
                raise SyscallError(errno.ELOOP)
            if isinstance(child.inode, Directory):
                raise SyscallError(errno.EISDIR)
            rp.advance()
            return child, False

    def _create_tmpfile(self, rp: ResolvingPath, opts: OpenOptions) -> TmpfsDentry:
        """Makes an unnamed regular file in the directory rp names
        (O_TMPFILE)."""
        d = self._resolve(rp)
        if not isinstance(d.inode, Directory):
            raise SyscallError(errno.ENOTDIR)
        # O_TMPFILE makes a file in directory d.
        may_create(rp, d, d.inode, exists=False, is_dir=True)
        mode, uid, gid = init_owner(rp.creds, d.inode, opts.mode & S.S_IALLUGO, False)
        inode = RegularFile(self, mode, uid, gid)
        inode.nlink = 0
        inode.linkable = not opts.flags & F.O_EXCL
        tmp = TmpfsDentry(inode, d, b"#%d" % inode.ino)
        tmp.set_dead()
        return tmp

    def _open(
        self,
        rp: ResolvingPath,
        d: TmpfsDentry,
        opts: OpenOptions,
        created: bool,
    ) -> FileDescription:
        flags = opts.flags
        vd = VirtualDentry(rp.mount, d)
        inode = d.inode
        if flags & F.O_PATH:
            if flags & F.O_DIRECTORY and not isinstance(inode, Directory):
                raise SyscallError(errno.ENOTDIR)
            return OpathFD(vd, flags)
        if isinstance(inode, Directory):
            return DirectoryFD(d, flags, vd)
        if isinstance(inode, RegularFile):
            if flags & F.O_TRUNC and not created:
                inode.set_size(rp.task, 0)
                inode.touch_cmtime()
            return RegularFileFD(inode, flags, vd)
        if isinstance(inode, Fifo):
            seen = inode.pipe.open_end(rp.task, flags)
            return PipeFD(inode.pipe, flags, vd, seen, inode.locks)
        if isinstance(inode, DeviceNode):
            kind = BLOCK_DEVICE if inode.file_type == S.S_IFBLK else CHAR_DEVICE
            return self.vfs.open_device_special_file(
                rp.task, vd, kind, inode.major, inode.minor, opts
            )
        if isinstance(inode, SocketNode):
            raise SyscallError(errno.ENXIO)
        raise SyscallError(errno.ELOOP)


def _inode_of(d: TmpfsDentry) -> Inode:
    """Returns d's inode, which holds its attributes."""
    return d.inode
