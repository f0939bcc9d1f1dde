"""pipefs: the filesystem of anonymous pipes, and PipeFD, the open end of
any pipe or FIFO.

pipe(2) makes an inode in pipefs, an internal filesystem mounted nowhere;
its files have no name ("pipe:[ino]" in /proc/pid/fd) but do have
attributes (fstat, fchmod work on them). A FIFO is an inode of an ordinary
filesystem (tmpfs) that holds a Pipe; opening it makes PipeFDs too, whose
attributes are the FIFO inode's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.pipefs.pipe import Pipe
from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.filesystem import Filesystem, FilesystemType
from pkg.sentry.vfs.inode_attrs import InodeAttrs, next_anon_ino
from pkg.sentry.vfs.opath import OpathFD
from pkg.sentry.vfs.permissions import check_open

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.waiter import Entry
    from pkg.sentry.vfs.filesystem import GetFilesystemOptions
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.options import OpenOptions, SetStatOptions
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem

_MOUNT_NAME = "pipefs"


class PipefsType(FilesystemType):
    """PipefsType makes the one pipefs of a VirtualFilesystem."""

    name = "pipefs"

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        fs = PipeFilesystem(vfs, self)
        return fs, fs.root


class PipeFilesystem(Filesystem):
    """PipeFilesystem holds no names: each pipe inode is reached only
    through its open files. Path operations apply to the file itself
    (empty paths)."""

    def __init__(self, vfs: VirtualFilesystem, fs_type: FilesystemType) -> None:
        super().__init__(vfs, fs_type)
        self.root = PipeDentry(Pipe(named=False), 0, 0, root=True)

    def _here(self, rp: ResolvingPath) -> PipeDentry:
        if not rp.done():
            raise SyscallError(errno.ENOTDIR)
        d = rp.start
        assert isinstance(d, PipeDentry)
        return d

    def stat_at(self, rp: ResolvingPath, mask: int) -> S.Statx:
        return self._here(rp).attrs.statx(self.dev_major, self.dev_minor, mask)

    def setstat_at(self, rp: ResolvingPath, opts: SetStatOptions) -> None:
        self._here(rp).attrs.setstat(rp.task, rp.creds, opts)

    def statfs_at(self, rp: ResolvingPath) -> Statfs:
        self._here(rp)
        return FS.Statfs(type=FS.PIPEFS_MAGIC)

    def get_dentry_at(self, rp: ResolvingPath, opts: object) -> Dentry:
        return self._here(rp)

    def access_at(self, rp: ResolvingPath, ats: int) -> None:
        self._here(rp).attrs.check_permissions(rp.creds, ats)

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        """Reopens a pipe through its /proc/pid/fd link: the FIFO open
        protocol applies (fifo_open), so an O_RDONLY open waits for a
        writer unless one exists or O_NONBLOCK is given."""
        d = self._here(rp)
        flags = opts.flags
        vd = VirtualDentry(rp.mount, d)
        if flags & F.O_PATH:
            return OpathFD(vd, flags)
        if d.attrs.file_type != S.S_IFIFO:
            raise SyscallError(errno.ENXIO)
        attrs = d.attrs
        check_open(rp.creds, rp.mount, flags, False, attrs.mode, attrs.uid, attrs.gid)
        seen = d.pipe.open_end(rp.task, flags)
        return PipeFD(d.pipe, flags, vd, seen)


class _PipeInodeAttrs(InodeAttrs):
    __slots__ = ()

    def set_size(self, t: Task | None, size: int) -> bool:
        raise SyscallError(errno.EINVAL)


class PipeDentry(Dentry):
    """PipeDentry is an anonymous pipe's inode."""

    __slots__ = ("attrs", "pipe")

    def __init__(self, pipe: Pipe, uid: int, gid: int, root: bool = False) -> None:
        super().__init__()
        self.pipe = pipe
        mode = S.S_IFDIR | 0o700 if root else S.S_IFIFO | 0o600
        self.attrs = _PipeInodeAttrs(next_anon_ino(), mode, uid, gid)

    def is_dir(self) -> bool:
        return self.attrs.file_type == S.S_IFDIR


def pipefs_mount(vfs: VirtualFilesystem) -> Mount:
    """Returns vfs's pipefs mount, creating it on first use."""
    with vfs.mu:
        mnt = vfs.internal_mounts.get(_MOUNT_NAME)
        if mnt is None:
            fs = PipeFilesystem(vfs, PipefsType())
            mnt = vfs.new_disconnected_mount(fs, fs.root)
            vfs.internal_mounts[_MOUNT_NAME] = mnt
        return mnt


class PipeFD(FileDescription):
    """PipeFD is one open end of a pipe or FIFO."""

    __slots__ = ("_acc", "_inode_locks", "_w_seen", "pipe")

    def __init__(
        self,
        pipe: Pipe,
        flags: int,
        vd: VirtualDentry,
        w_seen: int,
        locks: FileLocks | None = None,
    ) -> None:
        """Makes an open end; the caller has already counted it with
        pipe.open_end (which returned w_seen). locks are the FIFO inode's."""
        super().__init__(flags & FILE_STATUS_FLAGS & ~F.O_LARGEFILE, vd)
        self.pipe = pipe
        self._acc = flags & F.O_ACCMODE
        self._w_seen = w_seen
        self._inode_locks = locks

    def release(self) -> None:
        self.pipe.close_end(self._acc)

    def read(self, t: Task, length: int) -> bytes:
        return self.pipe.read(t, length, self.nonblocking)

    def write(self, t: Task, data: bytes) -> int:
        return self.pipe.write(t, data, self.nonblocking)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            t.mm.write_i32(arg, self.pipe.queued())
            return 0
        raise SyscallError(errno.ENOTTY)

    def readiness(self, mask: int) -> int:
        return self.pipe.readiness(mask, self.readable, self.writable, self._w_seen)

    def event_register(self, entry: Entry) -> None:
        self.pipe.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.pipe.queue.unregister(entry)

    def get_pipe_size(self) -> int:
        return self.pipe.capacity

    def set_pipe_size(self, t: Task, size: int) -> int:
        return self.pipe.set_capacity(t, size)

    def file_locks(self) -> FileLocks | None:
        if self._inode_locks is not None:
            return self._inode_locks
        return super().file_locks()

    def display_name(self) -> str:
        assert self.vd is not None
        d = self.vd.dentry
        if isinstance(d, PipeDentry):
            return f"pipe:[{d.attrs.ino}]"
        return super().display_name()


def new_pipe(
    vfs: VirtualFilesystem, creds: Credentials, flags: int
) -> tuple[PipeFD, PipeFD]:
    """Makes an anonymous pipe (pipe2(2)); returns its read and write ends.
    flags may hold O_NONBLOCK and O_DIRECT (packet mode is not modelled:
    TODO(#5))."""
    mnt = pipefs_mount(vfs)
    pipe = Pipe(named=False)
    d = PipeDentry(pipe, creds.fsuid, creds.fsgid)
    vd = VirtualDentry(mnt, d)
    status = flags & (F.O_NONBLOCK | F.O_DIRECT)
    pipe.open_end(None, F.O_RDONLY)
    pipe.open_end(None, F.O_WRONLY)
    r = PipeFD(pipe, F.O_RDONLY | status, vd, 0)
    w = PipeFD(pipe, F.O_WRONLY | status, vd, 0)
    return r, w
