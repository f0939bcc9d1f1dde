"""Paths as system calls name them: a task, a dirfd and a path.

System call handlers turn (dirfd, path) arguments into a PathOperation
here, and execve opens its executable with open_executable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux.fs import PATH_MAX
from pkg.abi.linux.stat import S_ISREG, make_dev
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.loader.elf import ExecFile
from pkg.sentry.vfs.options import OpenOptions
from pkg.sentry.vfs.resolving_path import PathOperation

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.vfs import VirtualFilesystem


def copy_in_path(t: Task, addr: int) -> bytes:
    """Reads a path argument (getname).

    Raises:
        SyscallError: EFAULT, or ENAMETOOLONG for PATH_MAX bytes or more.
    """
    return t.copy_in_string(addr, PATH_MAX)


def dirfd_start(t: Task, dirfd: int, path: bytes) -> VirtualDentry:
    """Returns where a relative path starts for dirfd (path_init).

    Raises:
        SyscallError: EBADF for a bad dirfd, ENOTDIR if a non-empty relative
            path is to start at a file that is not a directory.
    """
    if dirfd == F.AT_FDCWD:
        return t.fs.cwd
    f = t.fd_table.get(dirfd)
    vd = f.vd
    if vd is None:
        # Pipes, sockets and other files without a path.
        if path:
            raise SyscallError(errno.ENOTDIR)
        raise SyscallError(errno.EBADF)
    if path and not vd.dentry.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return vd


def path_operation(
    t: Task,
    dirfd: int,
    path: bytes,
    follow: bool,
    allow_empty: bool = False,
    resolve: int = 0,
) -> PathOperation:
    """Returns the PathOperation for (dirfd, path) of an *at system call.

    Args:
        follow: whether a symbolic link at the end is followed.
        allow_empty: AT_EMPTY_PATH: an empty path names dirfd itself.
        resolve: openat2 RESOLVE_* flags.

    Raises:
        SyscallError: ENOENT for an empty path without allow_empty, and the
            errors of dirfd_start.
    """
    if not path and not allow_empty:
        raise SyscallError(errno.ENOENT)
    root = t.fs.root
    if path.startswith(b"/"):
        start = root
        if resolve & (F.RESOLVE_BENEATH | F.RESOLVE_IN_ROOT) and dirfd != F.AT_FDCWD:
            start = dirfd_start(t, dirfd, path)
    else:
        start = dirfd_start(t, dirfd, path)
    return PathOperation(
        root=root, start=start, path=path, follow=follow, resolve=resolve
    )


def file_for_empty_path(t: Task, dirfd: int) -> FileDescription | None:
    """Returns the open file an empty path with AT_EMPTY_PATH names, or None
    for AT_FDCWD (the working directory)."""
    if dirfd == F.AT_FDCWD:
        return None
    return t.fd_table.get(dirfd)


class ExecutableFile(ExecFile):
    """ExecutableFile is a file opened for execve, read by the loader.

    Attributes:
        file: the open file; close() releases it.
    """

    def __init__(
        self,
        t: Task | None,
        file: FileDescription,
        size: int,
        ident: tuple[int, int, str] | None = None,
    ) -> None:
        self._t = t
        self.file = file
        self._size = size
        self._ident = ident

    def pread(self, length: int, offset: int) -> bytes:
        out = []
        while length > 0:
            chunk = self.file.pread(self._t, length, offset)  # type: ignore[arg-type]
            if not chunk:
                break
            out.append(chunk)
            length -= len(chunk)
            offset += len(chunk)
        return b"".join(out)

    def size(self) -> int:
        return self._size

    def configure_mmap(self, opts: object) -> bool:
        f = self.file
        try:
            f.configure_mmap(self._t, opts)  # type: ignore[arg-type]
        except SyscallError:
            return False
        if getattr(opts, "mappable", None) is None:
            return False
        opts.file = f  # type: ignore[attr-defined]
        return True

    def identity(self) -> tuple[int, int, str] | None:
        return self._ident

    def close(self) -> None:
        """Drops the open file."""
        self.file.dec_ref()


def open_executable_at(
    vfs: VirtualFilesystem,
    t: Task | None,
    creds: Credentials,
    pop: PathOperation,
) -> ExecutableFile:
    """Opens the file pop names for execution (do_open_execat).

    The file must be a regular file the caller may execute, on a mount that
    allows execution.

    Raises:
        SyscallError: EACCES (not a regular file, no execute permission,
            noexec mount), ELOOP, and the path errors.
    """
    f = vfs.open_at(t, creds, pop, OpenOptions(F.O_RDONLY, for_exec=True))
    try:
        assert f.vd is not None
        st = vfs.stat_vd(t, creds, f.vd, 0)
        if not S_ISREG(st.mode):
            raise SyscallError(errno.EACCES)
    except BaseException:
        f.dec_ref()
        raise
    path = vfs.path_for_display(f.vd).decode(errors="replace")
    ident = (make_dev(st.dev_major, st.dev_minor), st.ino, path)
    return ExecutableFile(t, f, st.size, ident)


def open_executable(t: Task, dirfd: int, path: bytes, flags: int = 0) -> ExecutableFile:
    """Opens a file for execve(2)/execveat(2) (open_exec).

    Args:
        dirfd: AT_FDCWD or a directory descriptor (execveat).
        path: the path; empty with AT_EMPTY_PATH to execute dirfd itself.
        flags: execveat's AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH.

    Returns:
        An ExecFile for the loader (pread, size); close() releases it.

    Raises:
        SyscallError: EINVAL for unknown flags, ENOENT for an empty path
            without AT_EMPTY_PATH, ELOOP for a symbolic link with
            AT_SYMLINK_NOFOLLOW, EACCES, and the path errors.
    """
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    follow = not flags & F.AT_SYMLINK_NOFOLLOW
    if not path and flags & F.AT_EMPTY_PATH:
        f = file_for_empty_path(t, dirfd)
        start = t.fs.cwd if f is None else f.vd
        if start is None:
            raise SyscallError(errno.EACCES)
        pop = PathOperation(root=t.fs.root, start=start, path=b"", follow=follow)
    else:
        pop = path_operation(t, dirfd, path, follow)
    return open_executable_at(t.kernel.vfs, t, t.creds, pop)


def get_file(t: Task, fd: int) -> FileDescription:
    """Returns the open file fd for a system call that refuses O_PATH files
    (fdget).

    Raises:
        SyscallError: EBADF if fd is not open or is an O_PATH file.
    """
    f = t.fd_table.get(fd)
    if f.flags & F.O_PATH:
        raise SyscallError(errno.EBADF)
    return f
