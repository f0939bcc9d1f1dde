"""The client side of the gofer protocol: one Client per mount connection.

Each method sends one request and waits for its response; a lock makes the
client safe to share between threads (requests are then serialised, as the
protocol requires). Failures the gofer reports come back as OSError with the
Linux errno; a broken connection is OSError(EIO) from then on.

Node ids returned by walk, mount and the creating calls belong to the
caller, who releases them with close_nodes.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Iterable, Sequence

from pkg.gofer import wire
from pkg.gofer.proto import gofer_pb2 as pb

log = logging.getLogger(__name__)

# Most symlinks one resolution follows, as Linux's MAXSYMLINKS.
MAX_SYMLINKS = 40

# The getdents budget asked for by default.
DEFAULT_DIRENTS_COUNT = 32 << 10


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class Client:
    """Client talks to a gofer over one connection.

    Args:
        sock: the client's end of a connected Unix stream socket; the client
            owns it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._mu = threading.Lock()
        self._broken = False

    def close(self) -> None:
        """Closes the connection; the gofer then releases every node."""
        with self._mu:
            self._broken = True
            self._sock.close()

    def fileno(self) -> int:
        """Returns the connection's host descriptor."""
        return self._sock.fileno()

    def _call(self, op: str, msg: object) -> tuple[pb.Response, list[int]]:
        req = pb.Request()
        getattr(req, op).CopyFrom(msg)
        payload = req.SerializeToString()
        with self._mu:
            if self._broken:
                raise _err(errno.EIO)
            try:
                wire.send_frame(self._sock, payload)
                frame = wire.recv_frame(self._sock)
                if frame is None:
                    raise wire.ProtocolError("gofer: connection closed")
            except (wire.ProtocolError, OSError) as e:
                self._broken = True
                log.error("gofer: connection lost during %s: %s", op, e)
                raise _err(errno.EIO) from e
        data, fds = frame
        resp = pb.Response()
        try:
            resp.ParseFromString(data)
        except Exception as e:
            for fd in fds:
                os.close(fd)
            raise _err(errno.EIO) from e
        if resp.errno or len(fds) != resp.num_fds:
            for fd in fds:
                os.close(fd)
            raise _err(resp.errno or errno.EIO)
        return resp, fds

    # Operations, one per request type.

    def mount(self) -> pb.MountResponse:
        """Returns the mount's root and properties."""
        return self._call("mount", pb.MountRequest())[0].mount

    def walk(self, dir_node: int, names: Sequence[bytes]) -> tuple[list[pb.Inode], int]:
        """Looks up names from dir_node.

        Returns:
            (inodes, stop_errno): one inode per name found, and 0 or the
            errno that stopped the walk at names[len(inodes)]. A walk that
            meets a symlink before the last name returns it last with
            stop_errno 0.
        """
        resp = self._call("walk", pb.WalkRequest(dir=dir_node, names=names))[0].walk
        return list(resp.inodes), resp.stop_errno

    def stat(self, node: int) -> pb.Stat:
        """Returns node's attributes."""
        return self._call("stat", pb.StatRequest(node=node))[0].stat.stat

    def open(self, node: int, flags: int) -> int:
        """Opens node and returns the donated host descriptor."""
        return self._call("open", pb.OpenRequest(node=node, flags=flags))[1][0]

    def create(
        self, dir_node: int, name: bytes, flags: int, mode: int, uid: int, gid: int
    ) -> tuple[pb.Inode, int]:
        """Creates and opens a regular file; returns its inode and the
        donated host descriptor."""
        resp, fds = self._call(
            "create",
            pb.CreateRequest(
                dir=dir_node, name=name, flags=flags, mode=mode, uid=uid, gid=gid
            ),
        )
        return resp.create.inode, fds[0]

    def mkdir(
        self, dir_node: int, name: bytes, mode: int, uid: int, gid: int
    ) -> pb.Inode:
        """Creates a directory."""
        req = pb.MkdirRequest(dir=dir_node, name=name, mode=mode, uid=uid, gid=gid)
        return self._call("mkdir", req)[0].new_node.inode

    def mknod(
        self,
        dir_node: int,
        name: bytes,
        mode: int,
        uid: int,
        gid: int,
        rdev: tuple[int, int] = (0, 0),
    ) -> pb.Inode:
        """Creates a regular file, FIFO, socket file or (when allowed) a
        device node."""
        req = pb.MknodRequest(
            dir=dir_node,
            name=name,
            mode=mode,
            rdev_major=rdev[0],
            rdev_minor=rdev[1],
            uid=uid,
            gid=gid,
        )
        return self._call("mknod", req)[0].new_node.inode

    def symlink(
        self, dir_node: int, name: bytes, target: bytes, uid: int, gid: int
    ) -> pb.Inode:
        """Creates a symlink."""
        req = pb.SymlinkRequest(
            dir=dir_node, name=name, target=target, uid=uid, gid=gid
        )
        return self._call("symlink", req)[0].new_node.inode

    def link(self, dir_node: int, name: bytes, target: int) -> pb.Inode:
        """Makes a hard link to target; returns a new node for it."""
        req = pb.LinkRequest(dir=dir_node, name=name, target=target)
        return self._call("link", req)[0].new_node.inode

    def unlink(self, dir_node: int, name: bytes, flags: int = 0) -> None:
        """Removes a name (a directory with AT_REMOVEDIR)."""
        self._call("unlink", pb.UnlinkRequest(dir=dir_node, name=name, flags=flags))

    def rename(
        self,
        old_dir: int,
        old_name: bytes,
        new_dir: int,
        new_name: bytes,
        flags: int = 0,
    ) -> None:
        """renameat2(2) between two directory nodes."""
        req = pb.RenameRequest(
            old_dir=old_dir,
            old_name=old_name,
            new_dir=new_dir,
            new_name=new_name,
            flags=flags,
        )
        self._call("rename", req)

    def readlink(self, node: int) -> bytes:
        """Returns a symlink's target."""
        return self._call("readlink", pb.ReadlinkRequest(node=node))[0].readlink.target

    def getdents(
        self,
        node: int,
        offset: int,
        count: int = DEFAULT_DIRENTS_COUNT,
        walk: bool = False,
    ) -> list[pb.Dirent]:
        """Reads directory entries from offset; empty at the end. With walk,
        entries that have an inode field come with a new node the caller
        owns."""
        req = pb.GetdentsRequest(node=node, offset=offset, count=count, walk=walk)
        return list(self._call("getdents", req)[0].getdents.dirents)

    def setstat(self, req: pb.SetStatRequest) -> pb.Stat:
        """Changes attributes; returns the new ones."""
        return self._call("setstat", req)[0].setstat.stat

    def statfs(self, node: int) -> pb.StatFSResponse:
        """Returns the statistics of the filesystem holding node."""
        return self._call("statfs", pb.StatFSRequest(node=node))[0].statfs

    def getxattr(self, node: int, name: bytes) -> bytes:
        """Returns an extended attribute's value."""
        req = pb.GetXattrRequest(node=node, name=name)
        return self._call("getxattr", req)[0].getxattr.value

    def setxattr(self, node: int, name: bytes, value: bytes, flags: int = 0) -> None:
        """Sets an extended attribute."""
        req = pb.SetXattrRequest(node=node, name=name, value=value, flags=flags)
        self._call("setxattr", req)

    def listxattr(self, node: int) -> list[bytes]:
        """Returns the names of node's extended attributes."""
        req = pb.ListXattrRequest(node=node)
        return list(self._call("listxattr", req)[0].listxattr.names)

    def removexattr(self, node: int, name: bytes) -> None:
        """Removes an extended attribute."""
        self._call("removexattr", pb.RemoveXattrRequest(node=node, name=name))

    def fsync(self, node: int, datasync: bool = False) -> None:
        """Flushes node's data (and metadata unless datasync) to disk."""
        self._call("fsync", pb.FsyncRequest(node=node, datasync=datasync))

    def close_nodes(self, nodes: Iterable[int]) -> None:
        """Releases node ids."""
        ids = list(nodes)
        if ids:
            self._call("close", pb.CloseRequest(nodes=ids))

    # Path resolution, for tools and tests. The sentry resolves paths in its
    # VFS instead.

    def resolve(self, root: int, path: bytes, follow: bool = True) -> pb.Inode:
        """Resolves path inside the mount, following symlinks on the client.

        Absolute symlinks restart at root and ".." never climbs above root,
        as a chrooted process sees its tree.

        Args:
            root: the mount's root node (from mount()).
            path: a path; leading slashes are ignored.
            follow: whether to follow a symlink in the last component.

        Returns:
            The inode reached. The caller owns its id unless it is root.

        Raises:
            OSError: ENOENT, ENOTDIR, ELOOP... as path resolution would.
        """
        stack: list[int] = []  # nodes below root, owned here
        pending = [c for c in path.split(b"/") if c and c != b"."]
        links = 0
        try:
            while pending:
                name = pending.pop(0)
                if name == b"..":
                    if stack:
                        self.close_nodes([stack.pop()])
                    continue
                cur = stack[-1] if stack else root
                inodes, stop = self.walk(cur, [name])
                if stop:
                    raise _err(stop)
                inode = inodes[0]
                is_link = (inode.stat.mode & 0o170000) == 0o120000
                if is_link and (pending or follow):
                    links += 1
                    try:
                        if links > MAX_SYMLINKS:
                            raise _err(errno.ELOOP)
                        target = self.readlink(inode.node)
                    finally:
                        self.close_nodes([inode.node])
                    if target.startswith(b"/"):
                        self.close_nodes(stack)
                        stack.clear()
                    pending[:0] = [c for c in target.split(b"/") if c and c != b"."]
                    continue
                if pending and (inode.stat.mode & 0o170000) != 0o040000:
                    self.close_nodes([inode.node])
                    raise _err(errno.ENOTDIR)
                stack.append(inode.node)
            if stack:
                node = stack[-1]
                inode = pb.Inode(node=node, stat=self.stat(node))
                stack.pop()
                return inode
            return pb.Inode(node=root, stat=self.stat(root))
        finally:
            self.close_nodes(stack)
