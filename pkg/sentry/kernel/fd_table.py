"""FDTable: a process's table of file descriptors (struct files_struct)."""

from __future__ import annotations

import threading

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.file_description import FileDescription

# The kernel's hard ceiling on descriptors (fs.nr_open default).
NR_OPEN = 1 << 20


class FDTable:
    """FDTable maps descriptor numbers to FileDescriptions.

    Each entry also carries the close-on-exec flag, which belongs to the
    descriptor, not the file. The table is also the owner of the POSIX
    byte-range locks its process takes: every close tells the file
    (FileDescription.on_close), which releases them, as filp_close does.
    """

    __slots__ = ("_cloexec", "_files", "_mu", "users")

    def __init__(self) -> None:
        self._mu = threading.Lock()
        # Tasks sharing this table (CLONE_FILES); the last one closes it.
        self.users = 1
        self._files: dict[int, FileDescription] = {}
        self._cloexec: set[int] = set()

    def get(self, fd: int) -> FileDescription:
        """Returns the file for fd.

        Raises:
            SyscallError: EBADF if fd is not open.
        """
        try:
            return self._files[fd]
        except KeyError:
            raise SyscallError(errno.EBADF) from None

    def get_with_flags(self, fd: int) -> tuple[FileDescription, bool]:
        """Returns (file, close-on-exec) for fd, or raises EBADF."""
        with self._mu:
            f = self._files.get(fd)
            if f is None:
                raise SyscallError(errno.EBADF)
            return f, fd in self._cloexec

    def new_fd(
        self,
        f: FileDescription,
        cloexec: bool = False,
        min_fd: int = 0,
        limit: int = 1024,
    ) -> int:
        """Installs f at the lowest free descriptor >= min_fd; the table
        takes over the caller's reference.

        Raises:
            SyscallError: EMFILE if no descriptor below limit is free.
        """
        with self._mu:
            fd = min_fd
            while fd in self._files:
                fd += 1
            if fd >= limit:
                raise SyscallError(errno.EMFILE)
            self._files[fd] = f
            if cloexec:
                self._cloexec.add(fd)
            return fd

    def set_fd(self, fd: int, f: FileDescription, cloexec: bool = False) -> None:
        """Installs f at fd (dup2), closing what was there; the table takes
        over the caller's reference."""
        with self._mu:
            old = self._files.get(fd)
            self._files[fd] = f
            if cloexec:
                self._cloexec.add(fd)
            else:
                self._cloexec.discard(fd)
        if old is not None:
            old.on_close(self)
            old.dec_ref()

    def set_cloexec(self, fd: int, cloexec: bool) -> None:
        """Sets or clears FD_CLOEXEC on fd."""
        with self._mu:
            if fd not in self._files:
                raise SyscallError(errno.EBADF)
            if cloexec:
                self._cloexec.add(fd)
            else:
                self._cloexec.discard(fd)

    def remove(self, fd: int) -> FileDescription:
        """Removes fd and returns its file; the caller owns the reference.

        Raises:
            SyscallError: EBADF if fd is not open.
        """
        with self._mu:
            f = self._files.pop(fd, None)
            if f is None:
                raise SyscallError(errno.EBADF)
            self._cloexec.discard(fd)
            return f

    def close(self, fd: int) -> None:
        """Closes fd."""
        f = self.remove(fd)
        f.on_close(self)
        f.dec_ref()

    def new_fds(
        self, files: list[FileDescription], cloexec: bool, limit: int
    ) -> list[int]:
        """Installs each of files at the lowest free descriptors, all or
        none (pipe(2)); the table takes over the caller's references.

        Raises:
            SyscallError: EMFILE if not enough descriptors below limit are
                free.
        """
        with self._mu:
            fds = []
            fd = 0
            while len(fds) < len(files):
                if fd not in self._files:
                    fds.append(fd)
                fd += 1
            if fds and fds[-1] >= limit:
                raise SyscallError(errno.EMFILE)
            for fd, f in zip(fds, files, strict=True):
                self._files[fd] = f
                if cloexec:
                    self._cloexec.add(fd)
            return fds

    def close_range(self, first: int, last: int, cloexec_only: bool) -> None:
        """Closes (or marks close-on-exec) every descriptor in [first, last]
        (close_range(2))."""
        with self._mu:
            fds = [fd for fd in self._files if first <= fd <= last]
            if cloexec_only:
                self._cloexec.update(fds)
                return
            doomed = []
            for fd in fds:
                doomed.append(self._files.pop(fd))
                self._cloexec.discard(fd)
        for f in doomed:
            f.on_close(self)
            f.dec_ref()

    def fds(self) -> list[int]:
        """Returns the open descriptors in order."""
        with self._mu:
            return sorted(self._files)

    def fork(self) -> FDTable:
        """Returns a copy sharing every file, as fork without CLONE_FILES."""
        new = FDTable()
        with self._mu:
            for fd, f in self._files.items():
                f.inc_ref()
                new._files[fd] = f
            new._cloexec = set(self._cloexec)
        return new

    def close_on_exec(self) -> None:
        """Closes every close-on-exec descriptor (execve)."""
        with self._mu:
            doomed = [self._files.pop(fd) for fd in self._cloexec if fd in self._files]
            self._cloexec.clear()
        for f in doomed:
            f.on_close(self)
            f.dec_ref()

    def close_all(self) -> None:
        """Closes every descriptor (the last user of the table exited)."""
        with self._mu:
            doomed = list(self._files.values())
            self._files.clear()
            self._cloexec.clear()
        for f in doomed:
            f.on_close(self)
            f.dec_ref()
