"""The gofer's file server: one Connection per mount.

Every node the client can name is an O_PATH descriptor the server holds.
Lookups open one component at a time relative to such a descriptor with
O_PATH|O_NOFOLLOW, and names can never be "." or "..", so no host symlink is
ever followed and nothing above the mount's root can be named, whatever the
tree contains and however it changes under us. Descriptors with an access
mode are made by reopening a node through /proc/self/fd (a magic link to the
very inode the node holds, not a path lookup), after checking the node's
type against the policy: host FIFOs and devices are refused unless allowed,
and sockets cannot be opened at all.

Host kernel interfaces mounted inside the served tree (procfs, sysfs,
cgroupfs, debugfs and the like: the host's /proc under a `runsc do` of the
host root) are sealed: their mount point can be looked up and stat'ed, so
the sentry can mount its own /proc there, but nothing inside them is served
(lookups fail with ENOENT, listings are empty, anything else is EACCES).
The sandbox has its own; the host's would tell it about the host.

The server makes no permission decisions of its own beyond read-only mounts:
the sentry checks the application's credentials against the attributes the
server reports, and the server (with CAP_DAC_OVERRIDE and friends) carries
out what the sentry decided.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat as st_mod
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pkg.gofer import hostcalls, wire
from pkg.gofer.proto import gofer_pb2 as pb

log = logging.getLogger(__name__)

# Flags of OpenRequest and CreateRequest the server honours.
_OPEN_PASSED_FLAGS = os.O_TRUNC | os.O_SYNC | os.O_DSYNC
# renameat2 flags a client may pass.
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_REMOVEDIR = 0x200
_XATTR_USER_PREFIX = b"user."
_STATX_BASIC_STATS = 0x7FF
_NAME_MAX = 255
_PATH_MAX = 4096
# Most names one Walk may carry.
_MAX_WALK = 255
# Bounds of a Getdents buffer.
_MIN_DIRENTS = 4096
_MAX_DIRENTS = 64 << 10
_XATTR_SIZE_MAX = 64 << 10
_NO_ID = 0xFFFFFFFF

# statfs f_type of host kernel interfaces that are never served (sealed).
_KERNEL_FS_TYPES = frozenset(
    {
        0x9FA0,  # proc
        0x62656572,  # sysfs
        0x0027E0EB,  # cgroup
        0x63677270,  # cgroup2
        0x64626720,  # debugfs
        0x74726163,  # tracefs
        0x73636673,  # securityfs
        0xCAFE4A11,  # bpf
        0x62656570,  # configfs
        0x6165676C,  # pstore
        0xDE5E81E4,  # efivarfs
        0x42494E4D,  # binfmt_misc
        0xF97CFF8C,  # selinuxfs
        0x65735543,  # fusectl
        0x19800202,  # mqueue
        0x6E736673,  # nsfs
    }
)


@dataclass(frozen=True, slots=True)
class Policy:
    """Policy is what a connection lets its client do.

    Attributes:
        read_only: refuse every change with EROFS.
        host_fifo: allow opening host FIFOs (done non-blocking).
        host_devices: allow opening and creating host device nodes.
    """

    read_only: bool = False
    host_fifo: bool = False
    host_devices: bool = False


class _Node:
    """_Node is one id's host O_PATH descriptor.

    Attributes:
        sealed: the node is on a host kernel interface (see the module
            docstring): only stat, statfs and close are served.
    """

    __slots__ = ("dev", "dir_fd", "fd", "ino", "mode", "sealed")

    def __init__(self, fd: int, st: os.stat_result, sealed: bool) -> None:
        self.fd = fd
        self.mode = st.st_mode
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.sealed = sealed
        # An open directory descriptor for Getdents, made on first use.
        self.dir_fd = -1

    def close(self) -> None:
        os.close(self.fd)
        if self.dir_fd >= 0:
            os.close(self.dir_fd)


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _timespec(ns: int) -> pb.Timespec:
    return pb.Timespec(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def stat_to_proto(st: os.stat_result) -> pb.Stat:
    """Converts a host stat result to the protocol's Stat."""
    return pb.Stat(
        mask=_STATX_BASIC_STATS,
        mode=st.st_mode,
        nlink=st.st_nlink,
        uid=st.st_uid,
        gid=st.st_gid,
        ino=st.st_ino,
        size=st.st_size,
        blocks=st.st_blocks,
        blksize=st.st_blksize,
        atime=_timespec(st.st_atime_ns),
        mtime=_timespec(st.st_mtime_ns),
        ctime=_timespec(st.st_ctime_ns),
        dev=st.st_dev,
        rdev_major=os.major(st.st_rdev),
        rdev_minor=os.minor(st.st_rdev),
    )


def _check_name(name: bytes) -> bytes:
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise _err(errno.EINVAL)
    if len(name) > _NAME_MAX:
        raise _err(errno.ENAMETOOLONG)
    return name


def open_proc_fd() -> int:
    """Opens /proc/self/fd, through which nodes are reopened.

    The gofer opens it before it chroots; tests call it directly.
    """
    return os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


class Connection:
    """Connection serves one mount over one socket.

    Args:
        sock: the server's end of the connection.
        root_fd: a descriptor for the mount's root (any kind; O_PATH is
            enough). The connection takes ownership.
        policy: what the client may do.
        proc_fd: a descriptor for /proc/self/fd, shared and not owned.
    """

    def __init__(
        self, sock: socket.socket, root_fd: int, policy: Policy, proc_fd: int
    ) -> None:
        self._sock = sock
        self._policy = policy
        self._proc_fd = proc_fd
        self._root_fd = root_fd
        self._nodes: dict[int, _Node] = {}
        self._next_id = 1
        self._handlers: dict[str, Callable[[Any], tuple[Any, list[int]]]] = {
            "mount": self._mount,
            "walk": self._walk,
            "stat": self._stat,
            "open": self._open,
            "create": self._create,
            "mkdir": self._mkdir,
            "mknod": self._mknod,
            "symlink": self._symlink,
            "link": self._link,
            "unlink": self._unlink,
            "rename": self._rename,
            "readlink": self._readlink,
            "getdents": self._getdents,
            "setstat": self._setstat,
            "statfs": self._statfs,
            "getxattr": self._getxattr,
            "setxattr": self._setxattr,
            "listxattr": self._listxattr,
            "removexattr": self._removexattr,
            "fsync": self._fsync,
            "close": self._close,
        }

    # Serving.

    def serve(self) -> None:
        """Serves requests until the client hangs up, then releases every
        node."""
        try:
            while True:
                frame = wire.recv_frame(self._sock)
                if frame is None:
                    return
                payload, fds = frame
                for fd in fds:
                    # Requests never carry descriptors.
                    os.close(fd)
                resp, out_fds = self.handle_payload(payload)
                try:
                    wire.send_frame(self._sock, resp, out_fds)
                finally:
                    for fd in out_fds:
                        os.close(fd)
        except (wire.ProtocolError, ConnectionError) as e:
            log.warning("gofer: connection dropped: %s", e)
        finally:
            self.release()

    def release(self) -> None:
        """Closes every node and the socket."""
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1
        self._sock.close()

    def handle_payload(self, payload: bytes) -> tuple[bytes, list[int]]:
        """Handles one serialized Request.

        Returns:
            The serialized Response and the descriptors to attach, which the
            caller closes after sending.

        Raises:
            wire.ProtocolError: the payload is not a Request.
        """
        req = pb.Request()
        try:
            req.ParseFromString(payload)
        except Exception as e:
            raise wire.ProtocolError(f"gofer: undecodable request: {e}") from e
        op = req.WhichOneof("op")
        if op is None:
            raise wire.ProtocolError("gofer: request names no operation")
        resp = pb.Response()
        fds: list[int] = []
        try:
            result, fds = self._handlers[op](getattr(req, op))
        except OSError as e:
            resp.errno = e.errno or errno.EIO
            if e.errno in (errno.EBADF, errno.EFAULT, None):
                log.warning("gofer: %s failed unexpectedly: %s", op, e)
        else:
            field = _RESULT_FIELD[type(result)]
            getattr(resp, field).CopyFrom(result)
            resp.num_fds = len(fds)
        return resp.SerializeToString(), fds

    # Helpers.

    def _add(self, fd: int, st: os.stat_result, parent_dev: int = -1) -> pb.Inode:
        """Registers fd as a new node; parent_dev is the device of the
        directory it was found in (-1: check the filesystem anyway)."""
        sealed = False
        if st.st_dev != parent_dev:
            # A mount point: what is mounted there?
            sealed = hostcalls.fstatfs(fd).f_type in _KERNEL_FS_TYPES
        node_id = self._next_id
        self._next_id += 1
        self._nodes[node_id] = _Node(fd, st, sealed)
        return pb.Inode(node=node_id, stat=stat_to_proto(st))

    def _any_node(self, node_id: int) -> _Node:
        """Returns a node for stat, statfs or close."""
        node = self._nodes.get(node_id)
        if node is None:
            raise _err(errno.EBADF)
        return node

    def _node(self, node_id: int) -> _Node:
        """Returns a node for anything but stat, statfs and close."""
        node = self._any_node(node_id)
        if node.sealed:
            raise _err(errno.EACCES)
        return node

    def _dir(self, node_id: int) -> _Node:
        node = self._node(node_id)
        if not st_mod.S_ISDIR(node.mode):
            raise _err(errno.ENOTDIR)
        return node

    def _writable(self) -> None:
        if self._policy.read_only:
            raise _err(errno.EROFS)

    def _reopen(self, node: _Node, flags: int) -> int:
        """Opens the inode node holds with flags, via its magic link."""
        fd = os.open(
            str(node.fd), flags | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=self._proc_fd
        )
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (node.dev, node.ino):
            # Cannot happen unless /proc lies; refuse rather than trust it.
            os.close(fd)
            raise _err(errno.EIO)
        return fd

    def _path_node(self, dir_node: _Node, name: bytes, want_type: int) -> pb.Inode:
        """Returns a new node for dir_node/name, just created, checking that
        it has the type that was created."""
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_node.fd)
        st = os.fstat(fd)
        if st_mod.S_IFMT(st.st_mode) != want_type:
            os.close(fd)
            raise _err(errno.EAGAIN)
        return self._add(fd, st)

    def _set_owner_mode(
        self, inode: pb.Inode, uid: int, gid: int, mode: int
    ) -> pb.Inode:
        """Gives a new node the owner and exact mode the client asked for.

        The owner goes first: chown clears set-id bits that chmod then sets.
        """
        node = self._nodes[inode.node]
        hostcalls.fchown_empty(node.fd, uid, gid)
        if not st_mod.S_ISLNK(node.mode):
            os.chmod(str(node.fd), mode & 0o7777, dir_fd=self._proc_fd)
        return pb.Inode(node=inode.node, stat=stat_to_proto(os.fstat(node.fd)))

    def _undo_create(
        self, dir_node: _Node, name: bytes, inode: pb.Inode | None, flags: int
    ) -> None:
        try:
            if inode is not None:
                self._nodes.pop(inode.node).close()
            if flags & _AT_REMOVEDIR:
                os.rmdir(name, dir_fd=dir_node.fd)
            else:
                os.unlink(name, dir_fd=dir_node.fd)
        except OSError as e:
            log.warning("gofer: cannot undo a failed creation: %s", e)

    # Operations.

    def _mount(self, req: pb.MountRequest) -> tuple[object, list[int]]:
        fd = os.dup(self._root_fd)
        inode = self._add(fd, os.fstat(fd))
        return (
            pb.MountResponse(
                root=inode,
                read_only=self._policy.read_only,
                max_message_size=wire.MAX_MESSAGE_SIZE,
            ),
            [],
        )

    def _walk(self, req: pb.WalkRequest) -> tuple[object, list[int]]:
        cur = self._any_node(req.dir)
        if len(req.names) > _MAX_WALK:
            raise _err(errno.EINVAL)
        for name in req.names:
            _check_name(name)
        out = pb.WalkResponse()
        mode, fd, dev, sealed = cur.mode, cur.fd, cur.dev, cur.sealed
        for i, name in enumerate(req.names):
            if not st_mod.S_ISDIR(mode):
                out.stop_errno = errno.ENOTDIR
                break
            if sealed:
                out.stop_errno = errno.ENOENT
                break
            try:
                nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                out.stop_errno = e.errno or errno.EIO
                break
            st = os.fstat(nfd)
            inode = self._add(nfd, st, dev)
            out.inodes.append(inode)
            mode, fd, dev = st.st_mode, nfd, st.st_dev
            sealed = self._nodes[inode.node].sealed
            if st_mod.S_ISLNK(mode) and i + 1 < len(req.names):
                break
        return out, []

    def _stat(self, req: pb.StatRequest) -> tuple[object, list[int]]:
        return pb.StatResponse(
            stat=stat_to_proto(os.fstat(self._any_node(req.node).fd))
        ), []

    def _open(self, req: pb.OpenRequest) -> tuple[object, list[int]]:
        node = self._node(req.node)
        kind = st_mod.S_IFMT(node.mode)
        extra = 0
        if kind == st_mod.S_IFDIR:
            raise _err(errno.EISDIR)
        if kind == st_mod.S_IFLNK:
            raise _err(errno.ELOOP)
        if kind == st_mod.S_IFSOCK:
            raise _err(errno.ENXIO)
        if kind == st_mod.S_IFIFO:
            if not self._policy.host_fifo:
                raise _err(errno.EPERM)
            extra = os.O_NONBLOCK
        elif kind in (st_mod.S_IFCHR, st_mod.S_IFBLK):
            if not self._policy.host_devices:
                raise _err(errno.EPERM)
            extra = os.O_NONBLOCK
        elif kind != st_mod.S_IFREG:
            raise _err(errno.EPERM)
        acc = req.flags & os.O_ACCMODE
        if acc == os.O_ACCMODE:
            raise _err(errno.EINVAL)
        if acc != os.O_RDONLY or req.flags & os.O_TRUNC:
            self._writable()
        fd = self._reopen(node, acc | (req.flags & _OPEN_PASSED_FLAGS) | extra)
        return pb.OpenResponse(), [fd]

    def _create(self, req: pb.CreateRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        acc = req.flags & os.O_ACCMODE
        if acc == os.O_ACCMODE:
            raise _err(errno.EINVAL)
        flags = (
            os.O_CREAT
            | os.O_EXCL
            | os.O_NOFOLLOW
            | os.O_CLOEXEC
            | acc
            | (req.flags & (os.O_SYNC | os.O_DSYNC))
        )
        fd = os.open(name, flags, req.mode & 0o7777, dir_fd=d.fd)
        inode = None
        try:
            pfd = os.open(str(fd), os.O_PATH | os.O_CLOEXEC, dir_fd=self._proc_fd)
            inode = self._add(pfd, os.fstat(pfd))
            inode = self._set_owner_mode(inode, req.uid, req.gid, req.mode)
        except BaseException:
            os.close(fd)
            self._undo_create(d, name, inode, 0)
            raise
        return pb.CreateResponse(inode=inode), [fd]

    def _mkdir(self, req: pb.MkdirRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        os.mkdir(name, req.mode & 0o7777, dir_fd=d.fd)
        inode = None
        try:
            inode = self._path_node(d, name, st_mod.S_IFDIR)
            inode = self._set_owner_mode(inode, req.uid, req.gid, req.mode)
        except BaseException:
            self._undo_create(d, name, inode, _AT_REMOVEDIR)
            raise
        return pb.NewNodeResponse(inode=inode), []

    def _mknod(self, req: pb.MknodRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        kind = st_mod.S_IFMT(req.mode)
        device = 0
        if kind in (st_mod.S_IFCHR, st_mod.S_IFBLK):
            if not self._policy.host_devices:
                raise _err(errno.EPERM)
            device = os.makedev(req.rdev_major, req.rdev_minor)
        elif kind == 0:
            kind = st_mod.S_IFREG
        elif kind not in (st_mod.S_IFREG, st_mod.S_IFIFO, st_mod.S_IFSOCK):
            raise _err(errno.EINVAL)
        os.mknod(name, kind | (req.mode & 0o7777), device, dir_fd=d.fd)
        inode = None
        try:
            inode = self._path_node(d, name, kind)
            inode = self._set_owner_mode(inode, req.uid, req.gid, req.mode)
        except BaseException:
            self._undo_create(d, name, inode, 0)
            raise
        return pb.NewNodeResponse(inode=inode), []

    def _symlink(self, req: pb.SymlinkRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        if not req.target or b"\0" in req.target:
            raise _err(errno.ENOENT if not req.target else errno.EINVAL)
        if len(req.target) >= _PATH_MAX:
            raise _err(errno.ENAMETOOLONG)
        os.symlink(req.target, name, dir_fd=d.fd)
        inode = None
        try:
            inode = self._path_node(d, name, st_mod.S_IFLNK)
            inode = self._set_owner_mode(inode, req.uid, req.gid, 0o777)
        except BaseException:
            self._undo_create(d, name, inode, 0)
            raise
        return pb.NewNodeResponse(inode=inode), []

    def _link(self, req: pb.LinkRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        target = self._node(req.target)
        if st_mod.S_ISDIR(target.mode):
            raise _err(errno.EPERM)
        try:
            hostcalls.link_empty(target.fd, d.fd, name)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            # Without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH fails with ENOENT;
            # the magic link names the same inode.
            os.link(
                str(target.fd),
                name,
                src_dir_fd=self._proc_fd,
                dst_dir_fd=d.fd,
                follow_symlinks=True,
            )
        fd = os.dup(target.fd)
        return pb.NewNodeResponse(inode=self._add(fd, os.fstat(fd))), []

    def _unlink(self, req: pb.UnlinkRequest) -> tuple[object, list[int]]:
        self._writable()
        d = self._dir(req.dir)
        name = _check_name(req.name)
        if req.flags & ~_AT_REMOVEDIR:
            raise _err(errno.EINVAL)
        if req.flags & _AT_REMOVEDIR:
            os.rmdir(name, dir_fd=d.fd)
        else:
            os.unlink(name, dir_fd=d.fd)
        return pb.Empty(), []

    def _rename(self, req: pb.RenameRequest) -> tuple[object, list[int]]:
        self._writable()
        old_dir = self._dir(req.old_dir)
        new_dir = self._dir(req.new_dir)
        old_name = _check_name(req.old_name)
        new_name = _check_name(req.new_name)
        if req.flags & ~(_RENAME_NOREPLACE | _RENAME_EXCHANGE):
            raise _err(errno.EINVAL)
        hostcalls.renameat2(old_dir.fd, old_name, new_dir.fd, new_name, req.flags)
        return pb.Empty(), []

    def _readlink(self, req: pb.ReadlinkRequest) -> tuple[object, list[int]]:
        node = self._node(req.node)
        if not st_mod.S_ISLNK(node.mode):
            raise _err(errno.EINVAL)
        return pb.ReadlinkResponse(target=os.readlink(b"", dir_fd=node.fd)), []

    def _getdents(self, req: pb.GetdentsRequest) -> tuple[object, list[int]]:
        node = self._any_node(req.node)
        if not st_mod.S_ISDIR(node.mode):
            raise _err(errno.ENOTDIR)
        if node.sealed:
            return pb.GetdentsResponse(), []
        if node.dir_fd < 0:
            node.dir_fd = os.open(
                ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=node.fd
            )
        os.lseek(node.dir_fd, req.offset, os.SEEK_SET)
        size = min(max(req.count, _MIN_DIRENTS), _MAX_DIRENTS)
        out = pb.GetdentsResponse()
        for ino, off, dtype, name in hostcalls.getdents64(node.dir_fd, size):
            dirent = pb.Dirent(name=name, ino=ino, type=dtype, next_offset=off)
            if req.walk and name not in (b".", b".."):
                try:
                    fd = os.open(
                        name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=node.fd
                    )
                except OSError:
                    # Gone since getdents saw it (or EMFILE): no node.
                    pass
                else:
                    dirent.inode.CopyFrom(self._add(fd, os.fstat(fd), node.dev))
            out.dirents.append(dirent)
        return out, []

    def _setstat(self, req: pb.SetStatRequest) -> tuple[object, list[int]]:
        self._writable()
        node = self._node(req.node)
        mask = req.mask
        if mask & pb.SETSTAT_SIZE:
            if st_mod.S_ISDIR(node.mode):
                raise _err(errno.EISDIR)
            if not st_mod.S_ISREG(node.mode):
                raise _err(errno.EINVAL)
            fd = self._reopen(node, os.O_WRONLY)
            try:
                os.ftruncate(fd, req.size)
            finally:
                os.close(fd)
        if mask & (pb.SETSTAT_UID | pb.SETSTAT_GID):
            hostcalls.fchown_empty(
                node.fd,
                req.uid if mask & pb.SETSTAT_UID else _NO_ID,
                req.gid if mask & pb.SETSTAT_GID else _NO_ID,
            )
        if mask & pb.SETSTAT_MODE:
            if st_mod.S_ISLNK(node.mode):
                raise _err(errno.EOPNOTSUPP)
            os.chmod(str(node.fd), req.mode & 0o7777, dir_fd=self._proc_fd)
        if mask & (pb.SETSTAT_ATIME | pb.SETSTAT_MTIME):
            hostcalls.utimens_empty(
                node.fd,
                _utime(mask, pb.SETSTAT_ATIME, pb.SETSTAT_ATIME_NOW, req.atime),
                _utime(mask, pb.SETSTAT_MTIME, pb.SETSTAT_MTIME_NOW, req.mtime),
            )
        return pb.SetStatResponse(stat=stat_to_proto(os.fstat(node.fd))), []

    def _statfs(self, req: pb.StatFSRequest) -> tuple[object, list[int]]:
        s = hostcalls.fstatfs(self._any_node(req.node).fd)
        return (
            pb.StatFSResponse(
                type=s.f_type & 0xFFFFFFFFFFFFFFFF,
                block_size=s.f_bsize,
                blocks=s.f_blocks,
                blocks_free=s.f_bfree,
                blocks_available=s.f_bavail,
                files=s.f_files,
                files_free=s.f_ffree,
                name_length=s.f_namelen,
                fragment_size=s.f_frsize,
                flags=s.f_flags,
            ),
            [],
        )

    def _xattr_fd(self, node: _Node) -> int | None:
        """Opens node for an f*xattr call, or returns None when the node
        cannot have user xattrs (symlinks and special files)."""
        if st_mod.S_ISREG(node.mode):
            return self._reopen(node, os.O_RDONLY | os.O_NONBLOCK)
        if st_mod.S_ISDIR(node.mode):
            return self._reopen(node, os.O_RDONLY | os.O_DIRECTORY)
        return None

    @staticmethod
    def _xattr_name(name: bytes) -> bytes:
        if not name.startswith(_XATTR_USER_PREFIX) or b"\0" in name:
            raise _err(errno.EOPNOTSUPP)
        if len(name) > _NAME_MAX or len(name) == len(_XATTR_USER_PREFIX):
            raise _err(errno.ERANGE)
        return name

    def _getxattr(self, req: pb.GetXattrRequest) -> tuple[object, list[int]]:
        name = self._xattr_name(req.name)
        fd = self._xattr_fd(self._node(req.node))
        if fd is None:
            raise _err(errno.ENODATA)
        try:
            return pb.GetXattrResponse(value=os.getxattr(fd, name)), []
        finally:
            os.close(fd)

    def _setxattr(self, req: pb.SetXattrRequest) -> tuple[object, list[int]]:
        self._writable()
        name = self._xattr_name(req.name)
        if len(req.value) > _XATTR_SIZE_MAX:
            raise _err(errno.E2BIG)
        if req.flags & ~(os.XATTR_CREATE | os.XATTR_REPLACE):
            raise _err(errno.EINVAL)
        fd = self._xattr_fd(self._node(req.node))
        if fd is None:
            raise _err(errno.EPERM)
        try:
            os.setxattr(fd, name, req.value, req.flags)
        finally:
            os.close(fd)
        return pb.Empty(), []

    def _listxattr(self, req: pb.ListXattrRequest) -> tuple[object, list[int]]:
        fd = self._xattr_fd(self._node(req.node))
        if fd is None:
            return pb.ListXattrResponse(), []
        try:
            names = [
                n.encode("utf-8", "surrogateescape")
                for n in os.listxattr(fd)
                if n.startswith("user.")
            ]
        finally:
            os.close(fd)
        return pb.ListXattrResponse(names=names), []

    def _removexattr(self, req: pb.RemoveXattrRequest) -> tuple[object, list[int]]:
        self._writable()
        name = self._xattr_name(req.name)
        fd = self._xattr_fd(self._node(req.node))
        if fd is None:
            raise _err(errno.ENODATA)
        try:
            os.removexattr(fd, name)
        finally:
            os.close(fd)
        return pb.Empty(), []

    def _fsync(self, req: pb.FsyncRequest) -> tuple[object, list[int]]:
        node = self._node(req.node)
        if st_mod.S_ISREG(node.mode):
            fd = self._reopen(node, os.O_RDONLY | os.O_NONBLOCK)
        elif st_mod.S_ISDIR(node.mode):
            fd = self._reopen(node, os.O_RDONLY | os.O_DIRECTORY)
        else:
            raise _err(errno.EINVAL)
        try:
            if req.datasync:
                os.fdatasync(fd)
            else:
                os.fsync(fd)
        finally:
            os.close(fd)
        return pb.Empty(), []

    def _close(self, req: pb.CloseRequest) -> tuple[object, list[int]]:
        for node_id in req.nodes:
            node = self._nodes.pop(node_id, None)
            if node is not None:
                node.close()
        return pb.Empty(), []


def _utime(mask: int, bit: int, now_bit: int, ts: pb.Timespec) -> tuple[int, int]:
    if not mask & bit:
        return (0, hostcalls.UTIME_OMIT)
    if mask & now_bit:
        return (0, hostcalls.UTIME_NOW)
    if ts.nsec >= 1_000_000_000:
        raise _err(errno.EINVAL)
    return (ts.sec, ts.nsec)


_RESULT_FIELD: dict[type, str] = {
    pb.MountResponse: "mount",
    pb.WalkResponse: "walk",
    pb.StatResponse: "stat",
    pb.OpenResponse: "open",
    pb.CreateResponse: "create",
    pb.NewNodeResponse: "new_node",
    pb.ReadlinkResponse: "readlink",
    pb.GetdentsResponse: "getdents",
    pb.SetStatResponse: "setstat",
    pb.StatFSResponse: "statfs",
    pb.GetXattrResponse: "getxattr",
    pb.ListXattrResponse: "listxattr",
    pb.Empty: "empty",
}


def serve_connections(connections: list[Connection]) -> None:
    """Serves every connection, each on its own thread, until all of them
    close."""
    threads = [
        threading.Thread(target=c.serve, name=f"gofer-conn-{i}", daemon=True)
        for i, c in enumerate(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
