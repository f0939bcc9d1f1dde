"""The gofer client filesystem: a container's files as the gofer serves
them (DESIGN.md sections 6 and 7).

Every path operation walks the sentry's own dentry tree; names not yet
known are looked up with one Walk request, and the answer (including "does
not exist") is cached, because the sentry has exclusive access to what the
gofer serves. Symbolic links are resolved here, in the sandbox's namespace:
the gofer never follows one. Permission checks use the cached attributes
and the caller's credentials; the gofer carries out what the sentry decided.

All tree changes happen under the filesystem's one lock (mu), held across
the gofer requests they make: requests on one connection are serialised
anyway. Reads and writes of file contents go straight to donated host
descriptors and take no filesystem lock.

Node ids are a bounded cache (see inode.py): at most max_nodes dentries hold
one; when an operation ends with more, the least recently used give theirs
back. Eviction happens only between operations, so that every node an
operation acquired stays valid until it returns.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.gofer.client import Client
from pkg.gofer.proto import gofer_pb2 as pb
from pkg.sentry.fsimpl.gofer.directory import GoferDirectoryFD
from pkg.sentry.fsimpl.gofer.inode import GoferDentry, GoferInode
from pkg.sentry.fsimpl.gofer.regular_file import GoferRegularFD
from pkg.sentry.fsimpl.pipefs.pipe import Pipe
from pkg.sentry.fsimpl.pipefs.pipefs import PipeFD
from pkg.sentry.vfs.dentry import INOTIFY_PATH_EVENT, Dentry, VirtualDentry
from pkg.sentry.vfs.device import BLOCK_DEVICE, CHAR_DEVICE
from pkg.sentry.vfs.filesystem import Filesystem, FilesystemType
from pkg.sentry.vfs.inode_attrs import setstat_events
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.options import UTIME_NOW, UTIME_OMIT
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

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.pgalloc.memory_file import MemoryFile
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.filesystem import GetFilesystemOptions
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

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Inode numbers for files on host devices other than the mount root's
# start here, so that they cannot collide with the root device's.
_FOREIGN_INO_BASE = 1 << 48

# Node ids a filesystem keeps, beyond those of deleted files and the root.
MAX_NODES = 4096


@dataclass(frozen=True, slots=True)
class GoferMountOptions:
    """GoferMountOptions is the internal data of a gofer mount: the
    connection to serve it (the filesystem takes ownership of the client),
    and how many node ids to keep."""

    client: Client
    max_nodes: int = MAX_NODES


class GoferType(FilesystemType):
    """GoferType makes gofer filesystems; only the sentry mounts them. mf
    holds the page caches of mmapped files."""

    name = "gofer"

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        if not isinstance(opts.internal, GoferMountOptions):
            raise SyscallError(errno.EINVAL)
        fs = GoferFilesystem(
            vfs, self, self.mf, opts.internal.client, opts.internal.max_nodes
        )
        return fs, fs.root


class GoferFilesystem(Filesystem):
    """GoferFilesystem is one mount's worth of files from the gofer.

    Attributes:
        client: the connection.
        mf: the MemoryFile holding page caches.
        mu: guards the dentry tree, the inode table and cached attributes
            of directories.
        refs_mu: guards dentry reference counts.
        root: the root dentry.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: FilesystemType,
        mf: MemoryFile,
        client: Client,
        max_nodes: int = MAX_NODES,
    ) -> None:
        self.client = client
        self.mf = mf
        resp = self.rpc(client.mount)
        super().__init__(vfs, fs_type, read_only=resp.read_only)
        self.mu = threading.RLock()
        self.refs_mu = threading.Lock()
        self.max_nodes = max_nodes
        self._depth = 0
        # Dentries holding a node that may be given back, oldest use first.
        self._lru: OrderedDict[GoferDentry, None] = OrderedDict()
        self._inodes: dict[tuple[int, int], GoferInode] = {}
        self._foreign_inos: dict[tuple[int, int], int] = {}
        self._next_foreign = itertools.count(_FOREIGN_INO_BASE)
        self._root_dev = resp.root.stat.dev
        inode = self._inode_for(resp.root.stat)
        self.root = GoferDentry(self, inode, resp.root.node, None, b"")

    # Gofer requests.

    @staticmethod
    def rpc(fn: Callable[..., _T], *args: Any) -> _T:
        """Calls a client method, turning its failure into SyscallError."""
        try:
            return fn(*args)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    def release(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds mu for an operation; the outermost one gives back excess
        node ids as it ends."""
        with self.mu:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and len(self._lru) > self.max_nodes:
                    self._evict()

    def _evict(self) -> None:
        """Gives back the least recently used node ids. Precondition: mu
        held, between operations."""
        victims = []
        while len(self._lru) > self.max_nodes * 3 // 4:
            d, _ = self._lru.popitem(last=False)
            victims.append(d.node)
            d.node = 0
        self._close_nodes(victims)

    def node(self, d: GoferDentry) -> int:
        """Returns d's node id, walking to its name again if it gave its
        node back. Precondition: mu held.

        Raises:
            SyscallError: ESTALE if the name no longer leads to d's file.
        """
        if d.node:
            if d in self._lru:
                self._lru.move_to_end(d)
            return d.node
        parent = d.parent
        if parent is None or d.released or d.is_dead():
            raise SyscallError(errno.ESTALE)
        inodes, stop = self.rpc(self.client.walk, self.node(parent), [d.name])
        if stop or (inodes[0].stat.dev, inodes[0].stat.ino) != d.inode.key:
            self._close_nodes([i.node for i in inodes])
            log.warning("gofer: %r changed outside the sandbox", d)
            raise SyscallError(errno.ESTALE)
        d.node = inodes[0].node
        self._lru[d] = None
        return d.node

    # Inodes.

    def ino_for(self, dev: int, ino: int) -> int:
        """Returns the sandbox's inode number for a host (dev, ino)."""
        if dev == self._root_dev:
            return ino
        with self.refs_mu:
            n = self._foreign_inos.get((dev, ino))
            if n is None:
                n = next(self._next_foreign)
                self._foreign_inos[(dev, ino)] = n
            return n

    def _inode_for(self, st: pb.Stat) -> GoferInode:
        """Returns the inode for st. Precondition: mu held, or
        construction."""
        key = (st.dev, st.ino)
        inode = self._inodes.get(key)
        if inode is None:
            inode = GoferInode(self, self.ino_for(st.dev, st.ino), st)
            self._inodes[key] = inode
        else:
            inode.update(st)
        return inode

    def _close_nodes(self, nodes: list[int]) -> None:
        if not nodes:
            return
        try:
            self.client.close_nodes(nodes)
        except OSError as e:
            log.warning("gofer: cannot release nodes: %s", e)

    def _new_dentry(
        self, parent: GoferDentry, name: bytes, new: pb.Inode
    ) -> GoferDentry:
        """Makes the dentry for a name the gofer just returned and caches it
        in parent. Precondition: mu held."""
        inode = self._inode_for(new.stat)
        d = GoferDentry(self, inode, new.node, parent, name)
        parent.children[name] = d
        self._lru[d] = None
        return d

    def release_dentry(self, d: GoferDentry) -> None:
        """Gives back what a deleted, unused dentry holds."""
        with self.locked():
            if d.released:
                return
            d.released = True
            self._lru.pop(d, None)
            node, d.node = d.node, 0
            inode = d.inode
            inode.dentries -= 1
            if inode.dentries == 0 and self._inodes.get(inode.key) is inode:
                del self._inodes[inode.key]
            self._close_nodes([node] if node else [])

    def _remove_name(self, parent: GoferDentry, d: GoferDentry) -> None:
        """Forgets d's name after the gofer removed or replaced it.
        Precondition: mu held."""
        if parent.children.get(d.name) is d:
            parent.children[d.name] = None
        if d.unused():
            self.release_dentry(d)

    # Walking. Every helper here runs with mu held.

    def _lookup(self, parent: GoferDentry, name: bytes) -> GoferDentry | None:
        """Returns the child called name, asking the gofer if it is not
        known; None if there is none."""
        if name in parent.children:
            return parent.children[name]
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        inodes, stop = self.rpc(self.client.walk, self.node(parent), [name])
        if stop == errno.ENOENT:
            parent.children[name] = None
            return None
        if stop:
            raise SyscallError(stop)
        return self._new_dentry(parent, name, inodes[0])

    def list_dir(self, d: GoferDentry) -> list[tuple[bytes, int, int]]:
        """Returns (name, type, ino) of directory d's entries but "." and
        "..", caching a dentry for each.

        Raises:
            SyscallError: ENOENT for a deleted directory.
        """
        out: list[tuple[bytes, int, int]] = []
        dev = d.inode.key[0]
        offset = 0
        with self.locked():
            if d.is_dead():
                raise SyscallError(errno.ENOENT)
            while True:
                ents = self.rpc(
                    self.client.getdents, self.node(d), offset, 32 << 10, True
                )
                if not ents:
                    break
                extra = []
                for e in ents:
                    if e.name in (b".", b".."):
                        continue
                    ino = self.ino_for(dev, e.ino)
                    if e.HasField("inode"):
                        st = e.inode.stat
                        ino = self.ino_for(st.dev, st.ino)
                        if d.children.get(e.name) is not None:
                            extra.append(e.inode.node)
                        else:
                            self._new_dentry(d, e.name, e.inode)
                    out.append((e.name, e.type, ino))
                self._close_nodes(extra)
                offset = ents[-1].next_offset
                # A big directory must not pile up nodes until it ends.
                if len(self._lru) > self.max_nodes:
                    if d in self._lru:
                        self._lru.move_to_end(d)
                    self._evict()
        return out

    # Shortcuts for a filesystem stacked on this one (the overlay's lower
    # layer): no path resolution, no permission checks.

    def layer_lookup(self, parent: Dentry, name: bytes) -> GoferDentry | None:
        """Returns parent's child called name (not following a symlink), or
        None if there is none or parent is not a directory."""
        assert isinstance(parent, GoferDentry)
        if name in (b".", b"..") or not parent.is_dir():
            return None
        with self.locked():
            return self._lookup(parent, name)

    def layer_statx(self, d: Dentry) -> S.Statx:
        """Returns d's attributes."""
        assert isinstance(d, GoferDentry)
        return d.inode.statx(d)

    def _readlink(self, d: GoferDentry) -> bytes:
        inode = d.inode
        if inode.target is None:
            inode.target = self.rpc(self.client.readlink, self.node(d))
        return inode.target

    def _step(self, rp: ResolvingPath, d: GoferDentry) -> GoferDentry:
        """Resolves rp's current component from directory d."""
        d.require_dir()
        d.inode.check_permissions(rp.creds, MAY_EXEC)
        reached = rp.handle_dots(d, d.parent)
        if reached is not None:
            return reached
        name = rp.component()
        child = self._lookup(d, name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        rp.check_mount(child)
        if child.inode.file_type == S.S_IFLNK and rp.should_follow_symlink():
            rp.handle_symlink(self._readlink(child))
            return d
        rp.advance()
        return child

    def _start(self, rp: ResolvingPath) -> GoferDentry:
        d = rp.start
        assert isinstance(d, GoferDentry)
        return d

    def _resolve(self, rp: ResolvingPath) -> GoferDentry:
        """Resolves every component of rp."""
        d = self._start(rp)
        while not rp.done():
            d = self._step(rp, d)
        if rp.must_be_dir() and not d.is_dir():
            raise SyscallError(errno.ENOTDIR)
        return d

    def _walk_parent(self, rp: ResolvingPath) -> GoferDentry:
        """Resolves every component of rp but the last and returns the
        directory that holds it."""
        d = self._start(rp)
        while not rp.done() and not rp.final():
            d = self._step(rp, d)
        d.require_dir()
        if not rp.done():
            d.inode.check_permissions(rp.creds, MAY_EXEC)
        return d

    def _last(self, rp: ResolvingPath, parent: GoferDentry) -> GoferDentry | None:
        return self._lookup(parent, rp.component())

    # Creation.

    def _prepare_create(
        self, rp: ResolvingPath, is_dir: bool, link_source: Mount | None = None
    ) -> GoferDentry:
        """Walks to the directory where rp's last component is to be made,
        checking that it may be (may_create). Returns the directory."""
        if rp.done():
            raise SyscallError(errno.EEXIST)
        parent = self._walk_parent(rp)
        name = rp.component()
        if name in (b".", b".."):
            raise SyscallError(errno.EEXIST)
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        exists = self._last(rp, parent) is not None
        may_create(rp, parent, parent.inode, exists, is_dir, link_source)
        return parent

    def _created(self, parent: GoferDentry, name: bytes, new: pb.Inode) -> GoferDentry:
        d = self._new_dentry(parent, name, new)
        # The directory's size, times and (for subdirectories) link count
        # changed on the host.
        parent.inode.stale = True
        d.inotify_with_parent(IN.IN_CREATE, 0, INOTIFY_PATH_EVENT)
        return d

    def mkdir_at(self, rp: ResolvingPath, opts: MkdirOptions) -> None:
        with self.locked():
            parent = self._prepare_create(rp, True)
            mode, uid, gid = init_owner(
                rp.creds, parent.inode, opts.mode & (S.S_IRWXUGO | S.S_ISVTX), True
            )
            name = rp.component()
            new = self.rpc(self.client.mkdir, self.node(parent), name, mode, uid, gid)
            self._created(parent, name, new)

    def mknod_at(self, rp: ResolvingPath, opts: MknodOptions) -> None:
        fmt = opts.mode & S.S_IFMT
        if fmt not in (0, S.S_IFREG, S.S_IFIFO, S.S_IFSOCK, S.S_IFCHR, S.S_IFBLK):
            raise SyscallError(errno.EINVAL)
        with self.locked():
            parent = self._prepare_create(rp, False)
            check_mknod(rp.creds, opts.mode, opts.dev_major, opts.dev_minor)
            mode, uid, gid = init_owner(
                rp.creds, parent.inode, opts.mode & S.S_IALLUGO, False
            )
            name = rp.component()
            new = self.rpc(
                self.client.mknod,
                self.node(parent),
                name,
                (fmt or S.S_IFREG) | mode,
                uid,
                gid,
                (opts.dev_major, opts.dev_minor),
            )
            d = self._created(parent, name, new)
            if fmt == S.S_IFSOCK:
                d.inode.endpoint = opts.endpoint

    def symlink_at(self, rp: ResolvingPath, target: bytes) -> None:
        with self.locked():
            parent = self._prepare_create(rp, False)
            _, uid, gid = init_owner(rp.creds, parent.inode, 0o777, False)
            name = rp.component()
            new = self.rpc(
                self.client.symlink, self.node(parent), name, target, uid, gid
            )
            d = self._created(parent, name, new)
            d.inode.target = target

    def link_at(self, rp: ResolvingPath, old: VirtualDentry) -> None:
        with self.locked():
            parent = self._prepare_create(rp, False, old.mount)
            target = old.dentry
            assert isinstance(target, GoferDentry)
            inode = target.inode
            if inode.is_dir():
                raise SyscallError(errno.EPERM)
            if target.is_dead():
                raise SyscallError(errno.ENOENT)
            name = rp.component()
            new = self.rpc(self.client.link, self.node(parent), name, self.node(target))
            # The link count changed (fsnotify_link's IN_ATTRIB).
            target.inotify_inode(IN.IN_ATTRIB)
            self._created(parent, name, new)

    # Removal.

    def unlink_at(self, rp: ResolvingPath) -> None:
        with self.locked():
            if rp.done():
                raise SyscallError(errno.EISDIR)
            parent = self._walk_parent(rp)
            if rp.component() in (b".", b".."):
                raise SyscallError(errno.EISDIR)
            rp.mount.check_begin_write()
            child = self._last(rp, parent)
            if child is None:
                raise SyscallError(errno.ENOENT)
            if rp.must_be_dir():
                raise SyscallError(errno.EISDIR if child.is_dir() else errno.ENOTDIR)
            may_delete(rp.creds, parent.inode, child, child.inode.uid, is_dir=False)
            if child.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            # The dentry keeps a node after its name is gone.
            self.node(child)
            self.rpc(self.client.unlink, self.node(parent), child.name, 0)
            self._kill(child)
            self._dropped_link(child)
            parent.inode.stale = True
            self._remove_name(parent, child)
            # The file's own events first, as d_delete_notify orders them.
            child.inotify_link_count(child.inode.nlink == 0)
            child.inotify_with_parent(IN.IN_DELETE, 0, INOTIFY_PATH_EVENT)

    def _kill(self, d: GoferDentry) -> None:
        """Marks d deleted once the gofer has removed it. The caller checked
        that no mount sits on d; one mounted since (a race with mount(2))
        cannot bring the host file back, so d dies regardless."""
        try:
            self.vfs.delete_dentry(d)
        except SyscallError:
            log.warning("gofer: %r removed while a mount was made on it", d)
            d.set_dead()
        self._lru.pop(d, None)

    def _dropped_link(self, d: GoferDentry) -> None:
        inode = d.inode
        with inode.attr_mu:
            inode.nlink = max(0, inode.nlink - 1)
        inode.stale = True

    def rmdir_at(self, rp: ResolvingPath) -> None:
        with self.locked():
            if rp.done():
                raise SyscallError(errno.EBUSY)
            parent = self._walk_parent(rp)
            name = rp.component()
            if name == b".":
                raise SyscallError(errno.EINVAL)
            if name == b"..":
                raise SyscallError(errno.ENOTEMPTY)
            rp.mount.check_begin_write()
            child = self._last(rp, parent)
            if child is None:
                raise SyscallError(errno.ENOENT)
            may_delete(rp.creds, parent.inode, child, child.inode.uid, is_dir=True)
            if child.is_mountpoint():
                raise SyscallError(errno.EBUSY)
            # The host decides emptiness (ENOTEMPTY), knowing every name.
            self.node(child)
            self.rpc(self.client.unlink, self.node(parent), name, F.AT_REMOVEDIR)
            self._kill(child)
            with child.inode.attr_mu:
                child.inode.nlink = 0
            child.children.clear()
            parent.inode.stale = True
            self._remove_name(parent, child)
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
        with self.locked():
            if rp.done():
                raise SyscallError(errno.EBUSY)
            new_parent = self._walk_parent(rp)
            new_name = rp.component()
            if old_parent.mount is not rp.mount:
                raise SyscallError(errno.EXDEV)
            if flags & F.RENAME_WHITEOUT:
                # Unlike Linux, whiteouts cannot be made on the host.
                raise SyscallError(errno.EINVAL)
            if new_name in (b".", b".."):
                raise SyscallError(errno.EBUSY)
            if len(new_name) > FS.NAME_MAX or len(old_name) > FS.NAME_MAX:
                raise SyscallError(errno.ENAMETOOLONG)
            rp.mount.check_begin_write()
            op = old_parent.dentry
            assert isinstance(op, GoferDentry)
            op.require_dir()
            renamed = self._lookup(op, old_name)
            if renamed is None:
                raise SyscallError(errno.ENOENT)
            replaced = self._last(rp, new_parent)
            check_rename_targets(rp, opts, op, renamed, new_parent, replaced)
            if replaced is not None and replaced.inode is renamed.inode:
                return
            may_rename(rp.creds, opts, op, renamed, new_parent, replaced, _inode_of)
            if renamed.is_mountpoint() or (
                replaced is not None and replaced.is_mountpoint()
            ):
                raise SyscallError(errno.EBUSY)
            if replaced is not None:
                self.node(replaced)
            self.rpc(
                self.client.rename,
                self.node(op),
                old_name,
                self.node(new_parent),
                new_name,
                flags & (F.RENAME_NOREPLACE | F.RENAME_EXCHANGE),
            )
            if replaced is not None and not exchange:
                self._kill(replaced)
            self._moved(op, old_name, renamed, new_parent, new_name, replaced, exchange)

    def _moved(
        self,
        op: GoferDentry,
        old_name: bytes,
        renamed: GoferDentry,
        np: GoferDentry,
        new_name: bytes,
        replaced: GoferDentry | None,
        exchange: bool,
    ) -> None:
        """Updates the tree after the gofer renamed. Precondition: mu."""
        cookie = self.vfs.new_inotify_cookie()
        renamed.inotify_with_parent(IN.IN_MOVED_FROM, cookie, INOTIFY_PATH_EVENT)
        op.children[old_name] = None
        if exchange:
            assert replaced is not None
            replaced.parent = op
            replaced.name = old_name
            op.children[old_name] = replaced
        elif replaced is not None:
            if replaced.is_dir():
                with replaced.inode.attr_mu:
                    replaced.inode.nlink = 0
            else:
                self._dropped_link(replaced)
            if replaced.unused():
                self.release_dentry(replaced)
        renamed.parent = np
        renamed.name = new_name
        np.children[new_name] = renamed
        for d in (op, np, renamed):
            d.inode.stale = True
        renamed.inotify_with_parent(IN.IN_MOVED_TO, cookie, INOTIFY_PATH_EVENT)
        renamed.inotify_with_parent(IN.IN_MOVE_SELF)
        if replaced is not None and not exchange:
            replaced.inotify_link_count(replaced.inode.nlink == 0, replaced=True)

    # Other path operations.

    def get_dentry_at(self, rp: ResolvingPath, opts: GetDentryOptions) -> Dentry:
        with self.locked():
            d = self._resolve(rp)
            if opts.check_search_dir:
                check_search_dir(rp.creds, d, d.inode)
            return d

    def get_parent_dentry_at(self, rp: ResolvingPath) -> Dentry:
        with self.locked():
            return self._walk_parent(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        with self.locked():
            inode = self._resolve(rp).inode
        if ats & MAY_WRITE and inode.file_type in (S.S_IFREG, S.S_IFDIR, S.S_IFLNK):
            rp.mount.check_begin_write()
        inode.check_permissions(rp.creds, ats)

    def readlink_at(self, rp: ResolvingPath) -> bytes:
        with self.locked():
            d = self._resolve(rp)
            if d.inode.file_type != S.S_IFLNK:
                raise SyscallError(errno.EINVAL)
            return self._readlink(d)

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        with self.locked():
            d = self._resolve(rp)
        return d.inode.statx(d)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        with self.locked():
            d = self._resolve(rp)
            if opts.mask:
                rp.mount.check_begin_write()
            self.setstat(rp.task, rp.creds, d, opts, via_fd=False)

    def setstat(
        self,
        t: Task | None,
        creds: Credentials,
        d: GoferDentry,
        opts: SetStatOptions,
        via_fd: bool,
    ) -> None:
        """Checks and applies a change of attributes to d's file."""
        mask = opts.mask
        if not mask:
            return
        inode = d.inode
        inode.refresh(d)
        check_set_stat(t, creds, opts, inode.mode, inode.uid, inode.gid, via_fd)
        req = pb.SetStatRequest(node=self.node(d))
        if mask & S.STATX_SIZE:
            req.mask |= pb.SETSTAT_SIZE
            req.size = opts.size
        # chown(2) drops set-ID bits of a non-directory even when both ids
        # are -1 (chown_common).
        owner = bool(mask & (S.STATX_UID | S.STATX_GID))
        if mask & S.STATX_UID and opts.uid != -1:
            req.mask |= pb.SETSTAT_UID
            req.uid = opts.uid
        if mask & S.STATX_GID and opts.gid != -1:
            req.mask |= pb.SETSTAT_GID
            req.gid = opts.gid
        if mask & S.STATX_MODE or (owner and inode.file_type != S.S_IFLNK):
            perm = apply_set_stat_mode_bits(creds, opts, inode.mode, inode.gid)
            if mask & S.STATX_MODE or perm != inode.mode & S.S_IALLUGO:
                if inode.file_type == S.S_IFLNK:
                    raise SyscallError(errno.EOPNOTSUPP)
                req.mask |= pb.SETSTAT_MODE
                req.mode = perm
        for bit, value, set_bit, now_bit, field in (
            (
                S.STATX_ATIME,
                opts.atime_ns,
                pb.SETSTAT_ATIME,
                pb.SETSTAT_ATIME_NOW,
                "atime",
            ),
            (
                S.STATX_MTIME,
                opts.mtime_ns,
                pb.SETSTAT_MTIME,
                pb.SETSTAT_MTIME_NOW,
                "mtime",
            ),
        ):
            if not mask & bit or value == UTIME_OMIT:
                continue
            req.mask |= set_bit
            if value == UTIME_NOW:
                req.mask |= now_bit
            else:
                getattr(req, field).CopyFrom(
                    pb.Timespec(sec=value // 1_000_000_000, nsec=value % 1_000_000_000)
                )
        if not req.mask:
            return
        inode.update(self.rpc(self.client.setstat, req))
        if req.mask & pb.SETSTAT_SIZE and inode.cache is not None:
            inode.cache.truncate(req.size)
        d.inotify_with_parent(setstat_events(opts))

    def statfs_at(self, rp: ResolvingPath) -> FS.Statfs:
        with self.locked():
            d = self._resolve(rp)
        return self.statfs(d)

    def statfs(self, d: GoferDentry) -> FS.Statfs:
        """Returns statfs(2) of the host filesystem holding d."""
        with self.locked():
            s = self.rpc(self.client.statfs, self.node(d))
        return FS.Statfs(
            type=s.type,
            block_size=s.block_size,
            blocks=s.blocks,
            blocks_free=s.blocks_free,
            blocks_available=s.blocks_available,
            files=s.files,
            files_free=s.files_free,
            name_length=s.name_length,
            fragment_size=s.fragment_size,
            flags=s.flags | (FS.ST_RDONLY if self.read_only else 0),
        )

    # Extended attributes: user.* is served by the gofer; trusted.* and
    # security.* are not (EOPNOTSUPP), as the gofer refuses them.

    def _check_xattr(
        self, creds: Credentials, inode: GoferInode, name: bytes, write: bool
    ) -> None:
        if not name or len(name) > FS.XATTR_NAME_MAX:
            raise SyscallError(errno.ERANGE)
        # The host keeps only user.* attributes for the sandbox.
        if not name.startswith((FS.XATTR_TRUSTED_PREFIX, FS.XATTR_USER_PREFIX)):
            raise SyscallError(errno.EOPNOTSUPP)
        check_xattr_permission(creds, inode, name, write)
        if name.startswith(FS.XATTR_TRUSTED_PREFIX):
            raise SyscallError(errno.EOPNOTSUPP)

    def listxattr_at(self, rp: ResolvingPath) -> list[bytes]:
        with self.locked():
            d = self._resolve(rp)
            return self.rpc(self.client.listxattr, self.node(d))

    def getxattr_at(self, rp: ResolvingPath, name: bytes) -> bytes:
        with self.locked():
            d = self._resolve(rp)
            self._check_xattr(rp.creds, d.inode, name, write=False)
            return self.rpc(self.client.getxattr, self.node(d), name)

    def setxattr_at(self, rp: ResolvingPath, opts: SetXattrOptions) -> None:
        with self.locked():
            d = self._resolve(rp)
            rp.mount.check_begin_write()
            self._check_xattr(rp.creds, d.inode, opts.name, write=True)
            self.rpc(
                self.client.setxattr, self.node(d), opts.name, opts.value, opts.flags
            )
            d.inode.stale = True

    def removexattr_at(self, rp: ResolvingPath, name: bytes) -> None:
        with self.locked():
            d = self._resolve(rp)
            rp.mount.check_begin_write()
            self._check_xattr(rp.creds, d.inode, name, write=True)
            self.rpc(self.client.removexattr, self.node(d), name)
            d.inode.stale = True

    def bound_endpoint_at(self, rp: ResolvingPath) -> object:
        with self.locked():
            inode = self._resolve(rp).inode
        if inode.is_dir():
            raise SyscallError(errno.ECONNREFUSED)
        inode.check_permissions(rp.creds, MAY_WRITE)
        if inode.file_type != S.S_IFSOCK or inode.endpoint is None:
            raise SyscallError(errno.ECONNREFUSED)
        return inode.endpoint

    # Opening.

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        with self.locked():
            if flags & F.O_TMPFILE == F.O_TMPFILE:
                d = self._resolve(rp)
                d.require_dir()
                # TODO(#5): O_TMPFILE on gofer mounts (an unlinked host
                # file; the protocol has no request for it yet).
                raise SyscallError(errno.EOPNOTSUPP)
            if flags & F.O_CREAT and not flags & F.O_PATH:
                d, created = self._open_create(rp, opts)
            else:
                d, created = self._resolve(rp), False
            if not created and not flags & F.O_PATH:
                inode = d.inode
                if flags & F.O_DIRECTORY and not inode.is_dir():
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
                if flags & F.O_TRUNC and inode.file_type == S.S_IFREG:
                    self._truncate(d)
        # Opening a FIFO may block: mu is not held.
        return self._open(rp, d, flags, opts)

    def _truncate(self, d: GoferDentry) -> None:
        req = pb.SetStatRequest(node=self.node(d), mask=pb.SETSTAT_SIZE, size=0)
        d.inode.update(self.rpc(self.client.setstat, req))
        if d.inode.cache is not None:
            d.inode.cache.truncate(0)

    def _open_create(
        self, rp: ResolvingPath, opts: OpenOptions
    ) -> tuple[GoferDentry, bool]:
        """Resolves rp for O_CREAT, creating a regular file when the last
        component does not exist. Returns (dentry, created)."""
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
            child = self._last(rp, parent)
            if child is None:
                may_create(rp, parent, parent.inode, exists=False, is_dir=False)
                mode, uid, gid = init_owner(
                    rp.creds, parent.inode, opts.mode & S.S_IALLUGO, False
                )
                # The creating open may be write-only or even read-only with
                # a mode that forbids reading; the gofer opens the host file
                # read-write for the sentry's shared descriptor.
                new, fd = self.rpc(
                    self.client.create,
                    self.node(parent),
                    name,
                    F.O_RDWR,
                    mode,
                    uid,
                    gid,
                )
                d = self._created(parent, name, new)
                d.inode.adopt_fd(fd)
                return d, True
            if flags & F.O_EXCL:
                raise SyscallError(errno.EEXIST)
            rp.check_mount(child)
            if child.inode.file_type == S.S_IFLNK:
                if rp.should_follow_symlink():
                    rp.handle_symlink(self._readlink(child))
                    rp.start = parent
                    continue
                raise SyscallError(errno.ELOOP)
            if child.is_dir():
                raise SyscallError(errno.EISDIR)
            rp.advance()
            return child, False

    def _open(
        self, rp: ResolvingPath, d: GoferDentry, flags: int, opts: OpenOptions
    ) -> FileDescription:
        vd = VirtualDentry(rp.mount, d)
        inode = d.inode
        if flags & F.O_PATH:
            if flags & F.O_DIRECTORY and not inode.is_dir():
                raise SyscallError(errno.ENOTDIR)
            return OpathFD(vd, flags)
        kind = inode.file_type
        if kind == S.S_IFDIR:
            return GoferDirectoryFD(d, flags, vd)
        if kind == S.S_IFREG:
            return GoferRegularFD(d, flags, vd)
        if kind == S.S_IFIFO:
            with self.locked():
                if inode.pipe is None:
                    inode.pipe = Pipe(named=True)
                pipe = inode.pipe
            seen = pipe.open_end(rp.task, flags)
            return PipeFD(pipe, flags, vd, seen, inode.locks)
        if kind in (S.S_IFCHR, S.S_IFBLK):
            return self.vfs.open_device_special_file(
                rp.task,
                vd,
                BLOCK_DEVICE if kind == S.S_IFBLK else CHAR_DEVICE,
                inode.rdev[0],
                inode.rdev[1],
                opts,
            )
        if kind == S.S_IFSOCK:
            raise SyscallError(errno.ENXIO)
        raise SyscallError(errno.ELOOP)


def _inode_of(d: GoferDentry) -> GoferInode:
    """Returns d's inode, which holds its attributes."""
    return d.inode
