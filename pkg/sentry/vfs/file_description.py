"""FileDescription: an open file, as struct file is in Linux.

A FileDescription is what a descriptor refers to. Descriptors created by dup,
fork or SCM_RIGHTS share one FileDescription (and so its offset and status
flags). Implementations override the operations they support; the defaults
fail with the errno Linux gives for a file that lacks the operation.

References are counted explicitly because closing the last reference has
effects applications observe (a pipe's reader sees EOF when the last writer
goes away), which cannot wait for Python's garbage collector.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT, Entry

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts

# Status flags that F_SETFL may change (fs/fcntl.c SETFL_MASK).
SETFL_MASK = (
    F.O_APPEND | F.O_NONBLOCK | F.O_DSYNC | F.O_ASYNC | F.O_DIRECT | F.O_NOATIME
)


class FileDescription:
    """FileDescription is the base of every open file.

    Attributes:
        flags: the status flags and access mode (O_*), as F_GETFL reports.
    """

    __slots__ = ("__weakref__", "_refs", "_refs_mu", "flags")

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self._refs = 1
        self._refs_mu = threading.Lock()

    # Reference counting.

    def inc_ref(self) -> None:
        """Takes a reference."""
        with self._refs_mu:
            self._refs += 1

    def dec_ref(self) -> None:
        """Drops a reference; the last one releases the file."""
        with self._refs_mu:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self.release()

    def release(self) -> None:
        """Frees what the file holds. Called once, by the last dec_ref."""

    # Access mode.

    @property
    def readable(self) -> bool:
        """Reports whether the file was opened for reading."""
        return self.flags & F.O_ACCMODE in (F.O_RDONLY, F.O_RDWR) and not (
            self.flags & F.O_PATH
        )

    @property
    def writable(self) -> bool:
        """Reports whether the file was opened for writing."""
        return self.flags & F.O_ACCMODE in (F.O_WRONLY, F.O_RDWR) and not (
            self.flags & F.O_PATH
        )

    @property
    def nonblocking(self) -> bool:
        """Reports whether O_NONBLOCK is set."""
        return bool(self.flags & F.O_NONBLOCK)

    # Operations. The defaults are those of a file that supports none.

    def read(self, t: Task, length: int) -> bytes:
        """Reads up to length bytes at the file offset (read(2))."""
        raise SyscallError(errno.EINVAL)

    def write(self, t: Task, data: bytes) -> int:
        """Writes data at the file offset (write(2)); returns bytes written."""
        raise SyscallError(errno.EINVAL)

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        """Reads at an explicit offset (pread64(2))."""
        raise SyscallError(errno.ESPIPE)

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        """Writes at an explicit offset (pwrite64(2))."""
        raise SyscallError(errno.ESPIPE)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        """Moves the file offset (lseek(2))."""
        raise SyscallError(errno.ESPIPE)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        """Performs a device-specific request (ioctl(2))."""
        raise SyscallError(errno.ENOTTY)

    def stat(self, t: Task) -> object:
        """Returns the file's attributes (an fsimpl-specific Statx)."""
        raise SyscallError(errno.EBADF)

    def readiness(self, mask: int) -> int:
        """Returns the events in mask that are ready now (as poll(2)).

        Regular files are always ready, so that is the default.
        """
        return mask & (EVENT_IN | EVENT_OUT)

    def event_register(self, entry: Entry) -> None:
        """Asks for entry to be notified when readiness changes."""

    def event_unregister(self, entry: Entry) -> None:
        """Cancels event_register."""

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        """Prepares mmap(2) of this file: sets opts.mappable (a Mappable,
        see pkg/sentry/mm/mappable.py) and opts.identity, and may lower
        opts.max_prot or raise (EPERM for a sealed file) where the file
        forbids the mapping. The mmap handler has already checked the access
        mode and set opts.file = self; the vma holds a reference on it.

        Raises:
            SyscallError: ENODEV, the default: the file cannot be mapped.
        """
        raise SyscallError(errno.ENODEV)

    def get_seals(self) -> int:
        """Returns the F_SEAL_* seals of the file (fcntl F_GET_SEALS).

        Raises:
            SyscallError: EINVAL, the default: the file does not support
                sealing.
        """
        raise SyscallError(errno.EINVAL)

    def add_seals(self, seals: int) -> None:
        """Adds F_SEAL_* seals (fcntl F_ADD_SEALS).

        Raises:
            SyscallError: EINVAL, the default: the file does not support
                sealing; EPERM if sealing is sealed; EBUSY for F_SEAL_WRITE
                while writable shared mappings exist.
        """
        raise SyscallError(errno.EINVAL)

    def display_name(self) -> str:
        """Returns what /proc/self/fd and strace show for this file."""
        return "anon_inode:[unknown]"

    def set_status_flags(self, flags: int) -> None:
        """Applies F_SETFL: only SETFL_MASK bits change."""
        self.flags = (self.flags & ~SETFL_MASK) | (flags & SETFL_MASK)
