"""/proc/[pid]/fd and /proc/[pid]/fdinfo (fs/proc/fd.c).

fd/N is a magic link: reading it shows the file's name, following it leads
to the open file itself, so that opening /proc/self/fd/N opens the same
file anew (a pipe's other end, a deleted tmpfs file) rather than whatever
now has that name. Files without a path (host descriptors, memfds) are
reopened by their FileDescription.reopen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import DataInode, DirInode, Inode, SymlinkInode
from pkg.sentry.fsimpl.proc.task_files import TaskInode, TaskRef, may_access

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription


def _parse_fd(name: bytes) -> int | None:
    """Returns the descriptor a name stands for: decimal digits without
    a sign or leading zeroes (name_to_int)."""
    if not name.isdigit() or (len(name) > 1 and name.startswith(b"0")):
        return None
    n = int(name)
    return n if n < 1 << 31 else None


def _file(ref: TaskRef, fd: int) -> tuple[FileDescription, bool]:
    t = ref.thread()
    table = t.fd_table
    if table is None:
        raise SyscallError(errno.ENOENT)
    try:
        return table.get_with_flags(fd)
    except SyscallError:
        raise SyscallError(errno.ENOENT) from None


class FdLink(TaskInode, SymlinkInode):
    """FdLink is /proc/pid/fd/N."""

    __slots__ = ("fd", "ref")

    def __init__(self, ref: TaskRef, fd: int, f: FileDescription) -> None:
        # The mode shows the access mode (tid_fd_update_inode).
        perm = 0
        if f.readable:
            perm |= 0o500
        if f.writable:
            perm |= 0o300
        SymlinkInode.__init__(self, perm)
        self.ref = ref
        self.fd = fd

    def valid(self) -> bool:
        if not self.ref.alive():
            return False
        try:
            _file(self.ref, self.fd)
        except SyscallError:
            return False
        return True

    def readlink(self, t: Task | None) -> bytes:
        f, _ = _file(self.ref, self.fd)
        if f.vd is not None and t is not None:
            vfs = f.vd.mount.vfs
            if f.vd.mount.ns is not None:
                return vfs.path_for_display(f.vd, t.fs.root)
        # Names chosen by the application (memfd_create) may be any bytes.
        return f.display_name().encode(errors="surrogateescape")

    def jump(self, t: Task | None) -> VirtualDentry | FileDescription | None:
        f, _ = _file(self.ref, self.fd)
        if f.vd is not None:
            return f.vd
        f.inc_ref()
        return f

    def check_follow(self, creds: Credentials) -> None:
        if not may_access(creds, self.ref):
            raise SyscallError(errno.EACCES)


class FdDir(TaskInode, DirInode):
    """FdDir is /proc/pid/fd."""

    __slots__ = ("ref",)

    def __init__(self, ref: TaskRef) -> None:
        DirInode.__init__(self, 0o500)
        self.ref = ref

    def _fds(self) -> list[int]:
        try:
            t = self.ref.thread()
        except SyscallError:
            return []
        return sorted(t.fd_table.fds()) if t.fd_table is not None else []

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        fd = _parse_fd(name)
        if fd is None:
            return None
        try:
            f, _ = _file(self.ref, fd)
        except SyscallError:
            return None
        return self._child(fd, f)

    def _child(self, fd: int, f: FileDescription) -> Inode:
        return FdLink(self.ref, fd, f)

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        out: list[tuple[bytes, Inode]] = []
        for fd in self._fds():
            try:
                f, _ = _file(self.ref, fd)
            except SyscallError:
                continue
            out.append((str(fd).encode(), self._child(fd, f)))
        return out

    def nlink(self) -> int:
        return 2


class FdInfo(TaskInode, DataInode):
    """FdInfo is /proc/pid/fdinfo/N (seq_show)."""

    __slots__ = ("fd", "ref")

    def __init__(self, ref: TaskRef, fd: int) -> None:
        DataInode.__init__(self, 0o444)
        self.ref = ref
        self.fd = fd

    def valid(self) -> bool:
        if not self.ref.alive():
            return False
        try:
            _file(self.ref, self.fd)
        except SyscallError:
            return False
        return True

    def generate(self, t: Task | None) -> bytes:
        f, cloexec = _file(self.ref, self.fd)
        flags = f.flags | (F.O_CLOEXEC if cloexec else 0)
        mnt_id = f.vd.mount.id if f.vd is not None else 0
        ino = 0
        if t is not None:
            try:
                ino = f.stat(t, S.STATX_INO).ino
            except SyscallError:
                ino = 0
        try:
            pos = f.tell(t) if t is not None else f.offset  # type: ignore[arg-type]
        except SyscallError:
            pos = 0
        text = f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n"
        return (text + f.fdinfo()).encode()


class FdInfoDir(FdDir):
    """FdInfoDir is /proc/pid/fdinfo."""

    __slots__ = ()

    def __init__(self, ref: TaskRef) -> None:
        super().__init__(ref)
        self.mode = S.S_IFDIR | 0o555

    def _child(self, fd: int, f: FileDescription) -> Inode:
        return FdInfo(self.ref, fd)
