"""FileDescription: an open file, as struct file is in Linux.

A FileDescription is what a descriptor refers to. Descriptors created by dup,
fork or SCM_RIGHTS share one FileDescription (and so its offset and status
flags). Implementations override the operations they support; the defaults
fail with the errno Linux gives for a file that lacks the operation.

A FileDescription opened by path holds a reference on its VirtualDentry
(`vd`), which keeps its mount busy. Operations that do not depend on the
kind of open file (fstat, fchmod, fgetxattr... of a file whose filesystem
keeps attributes by path) default to the VFS path operation on `vd` with an
empty path, as AT_EMPTY_PATH does.

References are counted explicitly because closing the last reference has
effects applications observe (a pipe's reader sees EOF when the last writer
goes away, a flock lock is released), which cannot wait for Python's garbage
collector.

Locks: byte-range and flock locks live in the FileLocks that file_locks()
returns (the inode's, for files in a filesystem). The FDTable calls on_close
with itself as the owner on every close, which releases that process's POSIX
locks as Linux's filp_close does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux.poll import DEFAULT_POLLMASK
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import Entry
from pkg.sentry.vfs.lock import FileLocks

if TYPE_CHECKING:
    from pkg.abi.linux.fs import Statfs
    from pkg.abi.linux.stat import Statx
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.dirent import DirentCallback
    from pkg.sentry.vfs.options import SetStatOptions, SetXattrOptions

# Status flags that F_SETFL may change (fs/fcntl.c SETFL_MASK).
SETFL_MASK = (
    F.O_APPEND | F.O_NONBLOCK | F.O_DSYNC | F.O_ASYNC | F.O_DIRECT | F.O_NOATIME
)

# Flags that open(2) keeps in the file's status flags (what F_GETFL shows
# besides the access mode); O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC and
# O_CLOEXEC act once at open.
FILE_STATUS_FLAGS = (
    F.O_ACCMODE
    | F.O_APPEND
    | F.O_NONBLOCK
    | F.O_DSYNC
    | F.O_ASYNC
    | F.O_DIRECT
    | F.O_LARGEFILE
    | F.O_DIRECTORY
    | F.O_NOFOLLOW
    | F.O_NOATIME
    | F.O_SYNC
    | F.O_PATH
    | F.O_TMPFILE
)


class FileDescription:
    """FileDescription is the base of every open file.

    Attributes:
        flags: the status flags and access mode (O_*), as F_GETFL reports.
        vd: the file's VirtualDentry for a file opened by path, else None.
        offset: the file offset, for implementations that have one; they
            update it under pos_mu.
        owner: F_SETOWN's (F_OWNER_* type, id), (F_OWNER_PID, 0) if unset.
        signal: F_SETSIG's signal number (0: SIGIO).
    """

    __slots__ = (
        "__weakref__",
        "_locks",
        "_refs",
        "_refs_mu",
        "_release_hooks",
        "flags",
        "offset",
        "owner",
        "pos_mu",
        "signal",
        "vd",
    )

    def __init__(self, flags: int, vd: VirtualDentry | None = None) -> None:
        self.flags = flags
        self._refs = 1
        self._refs_mu = threading.Lock()
        # Run when the last reference goes (epoll drops its registrations
        # of the file, as eventpoll_release does); keyed by their owner.
        self._release_hooks: dict[object, Callable[[], None]] | None = None
        self.vd = vd
        if vd is not None:
            vd.inc_ref()
        self.offset = 0
        self.pos_mu = threading.Lock()
        self.owner = (F.F_OWNER_PID, 0)
        self.signal = 0
        self._locks: FileLocks | None = None

    # Reference counting.

    def inc_ref(self) -> None:
        """Takes a reference."""
        with self._refs_mu:
            self._refs += 1

    def refs(self) -> int:
        """Returns the number of references (for the unix socket garbage
        collector, which looks for files only in-flight messages hold)."""
        return self._refs

    def dec_ref(self) -> None:
        """Drops a reference; the last one releases the file."""
        with self._refs_mu:
            self._refs -= 1
            last = self._refs == 0
            hooks = self._release_hooks if last else None
            if last:
                self._release_hooks = None
        if last:
            if hooks:
                for hook in list(hooks.values()):
                    hook()
            locks = self._existing_locks()
            if locks is not None:
                locks.release_description(self)
            if self.vd is not None and not self.is_path:
                self.vd.dentry.inotify_with_parent(
                    IN.IN_CLOSE_WRITE if self.writable else IN.IN_CLOSE_NOWRITE
                )
            self.release()
            if self.vd is not None:
                self.vd.dec_ref()

    def release(self) -> None:
        """Frees what the file holds. Called once, by the last dec_ref."""

    def on_close(self, owner: object) -> None:
        """Called each time a descriptor of this file is closed by the
        descriptor table owner: releases owner's POSIX locks on the file."""
        locks = self._existing_locks()
        if locks is not None:
            locks.unlock(owner)

    def _existing_locks(self) -> FileLocks | None:
        # Without an inode's FileLocks, there are locks only if someone
        # asked for them.
        if type(self).file_locks is FileDescription.file_locks:
            return self._locks
        return self.file_locks()

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

    @property
    def is_path(self) -> bool:
        """Reports whether this is an O_PATH file, usable only as a handle
        on its path."""
        return bool(self.flags & F.O_PATH)

    # I/O. The defaults are those of a file that supports none.

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

    def tell(self, t: Task) -> int:
        """Returns the file offset. Files whose offset lives elsewhere (a
        host descriptor shares its open file's) override this."""
        return self.offset

    def iterate_dirents(self, t: Task, cb: DirentCallback) -> None:
        """Feeds directory entries from the file offset to cb until cb
        refuses one or the directory ends, advancing the offset past each
        accepted entry (getdents64(2))."""
        raise SyscallError(errno.ENOTDIR)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        """Performs a device-specific request (ioctl(2))."""
        raise SyscallError(errno.ENOTTY)

    def allocate(self, t: Task, mode: int, offset: int, length: int) -> None:
        """Allocates or deallocates space (fallocate(2)). The syscall has
        already refused non-regular files."""
        raise SyscallError(errno.EOPNOTSUPP)

    def sync(self, t: Task) -> None:
        """Flushes the file's data and metadata (fsync(2))."""
        raise SyscallError(errno.EINVAL)

    def get_pipe_size(self) -> int:
        """Returns a pipe's capacity (F_GETPIPE_SZ); EBADF for other
        files."""
        raise SyscallError(errno.EBADF)

    def set_pipe_size(self, t: Task, size: int) -> int:
        """Sets a pipe's capacity (F_SETPIPE_SZ); EBADF for other files."""
        raise SyscallError(errno.EBADF)

    # Attributes. The defaults operate on vd by path.

    def stat(self, t: Task, mask: int) -> Statx:
        """Returns the file's attributes (fstat(2), statx(2))."""
        if self.vd is None:
            raise SyscallError(errno.EBADF)
        return self.vd.mount.vfs.stat_vd(t, t.creds, self.vd, mask)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        """Changes the file's attributes (fchmod(2), fchown(2),
        ftruncate(2), futimens(2))."""
        if self.vd is None:
            raise SyscallError(errno.EBADF)
        self.vd.mount.vfs.setstat_vd(t, t.creds, self.vd, opts)

    def statfs(self, t: Task) -> Statfs:
        """Returns statfs(2) for the file's filesystem."""
        if self.vd is None:
            raise SyscallError(errno.EBADF)
        return self.vd.mount.vfs.statfs_vd(t, t.creds, self.vd)

    def listxattr(self, t: Task) -> list[bytes]:
        """Returns the names of the file's extended attributes."""
        if self.vd is None:
            raise SyscallError(errno.EOPNOTSUPP)
        return self.vd.mount.vfs.listxattr_vd(t, t.creds, self.vd)

    def getxattr(self, t: Task, name: bytes) -> bytes:
        """Returns an extended attribute's value."""
        if self.vd is None:
            raise SyscallError(errno.EOPNOTSUPP)
        return self.vd.mount.vfs.getxattr_vd(t, t.creds, self.vd, name)

    def setxattr(self, t: Task, opts: SetXattrOptions) -> None:
        """Sets an extended attribute."""
        if self.vd is None:
            raise SyscallError(errno.EOPNOTSUPP)
        self.vd.mount.vfs.setxattr_vd(t, t.creds, self.vd, opts)

    def removexattr(self, t: Task, name: bytes) -> None:
        """Removes an extended attribute."""
        if self.vd is None:
            raise SyscallError(errno.EOPNOTSUPP)
        self.vd.mount.vfs.removexattr_vd(t, t.creds, self.vd, name)

    # Readiness.

    def readiness(self, mask: int) -> int:
        """Returns the events in mask that are ready now (as poll(2)).

        Regular files are always ready, so that is the default
        (DEFAULT_POLLMASK, what Linux reports for a file without a poll
        operation).
        """
        return mask & DEFAULT_POLLMASK

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

    # Notification.

    def notify(self, events: int) -> None:
        """Reports inotify events on the file (IN_ACCESS after a read,
        IN_MODIFY after a write...)."""
        if self.vd is not None:
            self.vd.dentry.inotify_with_parent(events)

    # Locks.

    def file_locks(self) -> FileLocks | None:
        """Returns the FileLocks of the file. Filesystems return their
        inode's; files without an inode get one of their own."""
        if self._locks is None:
            self._locks = FileLocks()
        return self._locks

    def reopen(self, t: Task | None, flags: int) -> FileDescription:
        """Opens the file anew through a /proc/pid/fd link, for files that
        have no path (vd is None): host descriptors, memfds.

        Raises:
            SyscallError: ENXIO, the default, as for anonymous inodes and
                sockets, which cannot be reopened.
        """
        raise SyscallError(errno.ENXIO)

    # Naming.

    def display_name(self) -> str:
        """Returns what /proc/self/fd and strace show for this file."""
        if self.vd is not None:
            vfs = self.vd.mount.vfs
            return vfs.path_for_display(self.vd).decode(errors="replace")
        return "anon_inode:[unknown]"

    def fdinfo(self) -> str:
        """Returns the lines /proc/pid/fdinfo/N shows after the common ones
        (the file's show_fdinfo), each ending in a newline."""
        return ""

    def set_status_flags(self, flags: int) -> None:
        """Applies F_SETFL: only SETFL_MASK bits change."""
        self.flags = (self.flags & ~SETFL_MASK) | (flags & SETFL_MASK)

    # Polling support beyond readiness.

    def epollable(self) -> bool:
        """Reports whether the file can be watched by epoll, as Linux's
        file_can_poll: files whose readiness changes (and so notify
        event_register) can; files that are always ready cannot (EPERM)."""
        return type(self).event_register is not FileDescription.event_register

    def host_poll_fd(self) -> int:
        """Returns a host descriptor whose host readiness stands for this
        file's, for poll(2) and epoll to wait on, or -1 if changes are
        notified through event_register instead."""
        return -1

    def add_release_hook(self, key: object, hook: Callable[[], None]) -> None:
        """Runs hook (once) when the last reference to the file goes,
        before release; key identifies it for remove_release_hook."""
        with self._refs_mu:
            if self._release_hooks is None:
                self._release_hooks = {}
            self._release_hooks[key] = hook

    def remove_release_hook(self, key: object) -> None:
        """Cancels add_release_hook."""
        with self._refs_mu:
            if self._release_hooks is not None:
                self._release_hooks.pop(key, None)
