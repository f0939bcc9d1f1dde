"""sockfs: the filesystem of socket inodes.

socket(2), socketpair(2) and accept(2) make an inode here for each socket,
as Linux's sock_alloc does: an internal filesystem mounted nowhere, whose
files have no name ("socket:[ino]" in /proc/pid/fd) but do have attributes,
so fstat reports S_IFSOCK and fchmod/fchown work. The socket itself is the
open file (pkg/sentry/socket); this module only gives it an inode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fs as FS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
from pkg.sentry.vfs.filesystem import Filesystem, FilesystemType
from pkg.sentry.vfs.inode_attrs import InodeAttrs, next_anon_ino

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.filesystem import GetFilesystemOptions
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.options import SetStatOptions
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem

_MOUNT_NAME = "sockfs"


class SockfsType(FilesystemType):
    """SockfsType makes the one sockfs of a VirtualFilesystem."""

    name = "sockfs"

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        fs = SocketFilesystem(vfs, self)
        return fs, fs.root


class SocketFilesystem(Filesystem):
    """SocketFilesystem holds no names: each socket inode is reached only
    through its open file. Path operations apply to the file itself."""

    def __init__(self, vfs: VirtualFilesystem, fs_type: FilesystemType) -> None:
        super().__init__(vfs, fs_type)
        self.root = SocketDentry(0, 0, root=True)

    def _here(self, rp: ResolvingPath) -> SocketDentry:
        if not rp.done():
            raise SyscallError(errno.ENOTDIR)
        d = rp.start
        assert isinstance(d, SocketDentry)
        return d

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        return self._here(rp).attrs.statx(self.dev_major, self.dev_minor, mask)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        self._here(rp).attrs.setstat(rp.task, rp.creds, opts)

    def statfs_at(self, rp: ResolvingPath) -> Statfs:
        self._here(rp)
        return FS.Statfs(type=FS.SOCKFS_MAGIC)

    def get_dentry_at(self, rp: ResolvingPath, opts: object) -> Dentry:
        return self._here(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        self._here(rp).attrs.check_permissions(rp.creds, ats)

    def open_at(self, rp: ResolvingPath, opts: object) -> FileDescription:
        # Opening /proc/pid/fd/N of a socket fails as in Linux.
        raise SyscallError(errno.ENXIO)


class _SocketInodeAttrs(InodeAttrs):
    __slots__ = ()

    def set_size(self, t: Task | None, size: int) -> bool:
        raise SyscallError(errno.EINVAL)


class SocketDentry(Dentry):
    """SocketDentry is a socket's inode: mode S_IFSOCK|0777, owned by the
    creator's fsuid and fsgid."""

    __slots__ = ("attrs",)

    def __init__(self, uid: int, gid: int, root: bool = False) -> None:
        super().__init__()
        mode = S.S_IFDIR | 0o700 if root else S.S_IFSOCK | 0o777
        self.attrs = _SocketInodeAttrs(next_anon_ino(), mode, uid, gid)

    def is_dir(self) -> bool:
        return self.attrs.file_type == S.S_IFDIR


def sockfs_mount(vfs: VirtualFilesystem) -> Mount:
    """Returns vfs's sockfs mount, creating it on first use."""
    with vfs.mu:
        mnt = vfs.internal_mounts.get(_MOUNT_NAME)
        if mnt is None:
            fs = SocketFilesystem(vfs, SockfsType())
            mnt = vfs.new_disconnected_mount(fs, fs.root)
            vfs.internal_mounts[_MOUNT_NAME] = mnt
        return mnt


def new_socket_dentry(vfs: VirtualFilesystem, creds: Credentials) -> VirtualDentry:
    """Returns a new socket inode of sockfs, owned by creds' fsuid/fsgid.
    The caller passes it to the socket's FileDescription, which takes its
    own reference."""
    mnt = sockfs_mount(vfs)
    return VirtualDentry(mnt, SocketDentry(creds.fsuid, creds.fsgid))
