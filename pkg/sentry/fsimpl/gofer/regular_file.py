"""Open regular files of the gofer filesystem: I/O on donated host
descriptors.

Every open file of an inode shares the inode's donated descriptors and keeps
its own offset; reads and writes are pread and pwrite at that offset, so the
host descriptor's own offset is never used. Blocking is not an issue:
regular host files do not block indefinitely.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError, from_os_error
from pkg.gofer import hostcalls
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.llseek import MAX_OFFSET, generic_llseek, host_data_or_hole
from pkg.sentry.vfs.options import SetStatOptions
from pkg.sentry.vfs.permissions import check_file_size_limit, kill_priv_on_write

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.gofer.inode import GoferDentry, GoferInode
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.lock import FileLocks

# Bytes read from the host at a time.
_MAX_READ = 1 << 20
# Largest file offset (MAX_LFS_FILESIZE).


class GoferRegularFD(FileDescription):
    """GoferRegularFD is an open regular file of a gofer mount.

    Raises (from the constructor):
        SyscallError: the gofer would not donate a descriptor.
    """

    __slots__ = ("dentry", "host_fd")

    def __init__(self, dentry: GoferDentry, flags: int, vd: VirtualDentry) -> None:
        # The host descriptor first: a failure must leave nothing behind.
        writable = flags & F.O_ACCMODE in (F.O_WRONLY, F.O_RDWR)
        self.host_fd = dentry.inode.open_host_fd(dentry, writable)
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.dentry = dentry

    def release(self) -> None:
        self.inode.close_host_fd()

    @property
    def inode(self) -> GoferInode:
        """The open file's inode."""
        return self.dentry.inode

    # The system calls have checked the access mode; splice(2) probes any
    # file with a zero-length pread.

    def read(self, t: Task, length: int) -> bytes:
        with self.pos_mu:
            data = self._pread(length, self.offset)
            self.offset += len(data)
        if data:
            self.notify(IN.IN_ACCESS)
        return data

    def pread(self, t: Task | None, length: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        data = self._pread(length, offset)
        if data:
            self.notify(IN.IN_ACCESS)
        return data

    def _pread(self, length: int, offset: int) -> bytes:
        # In pieces, so that a huge read past the end of a small file does
        # not allocate the whole request.
        out = []
        while length > 0:
            n = min(length, _MAX_READ)
            cache = self.inode.cache
            if cache is not None:
                data = cache.read(offset, n)
            else:
                try:
                    data = os.pread(self.host_fd, n, offset)
                except OSError as e:
                    if out:
                        break
                    raise from_os_error(e) from None
            out.append(data)
            if len(data) < n:
                break
            offset += n
            length -= n
        return out[0] if len(out) == 1 else b"".join(out)

    def write(self, t: Task, data: bytes) -> int:
        with self.pos_mu:
            offset = self.offset
            if self.flags & F.O_APPEND:
                offset = self._host_size()
            n = self._pwrite(t, data, offset)
            self.offset = offset + n
        if n:
            self.notify(IN.IN_MODIFY)
        return n

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        # As on Linux, O_APPEND wins over the offset.
        if self.flags & F.O_APPEND:
            offset = self._host_size()
        n = self._pwrite(t, data, offset)
        if n:
            self.notify(IN.IN_MODIFY)
        return n

    def _host_size(self) -> int:
        try:
            return os.fstat(self.host_fd).st_size
        except OSError as e:
            raise from_os_error(e) from None

    def _pwrite(self, t: Task | None, data: bytes, offset: int) -> int:
        if not data:
            return 0
        length = len(data)
        if offset + length > MAX_OFFSET:
            raise SyscallError(errno.EFBIG)
        if t is not None:
            length = check_file_size_limit(t, offset, length)
            self._kill_priv(t)
        cache = self.inode.cache
        if cache is not None:
            n = cache.write(offset, data[:length])
        else:
            try:
                n = os.pwrite(self.host_fd, data[:length], offset)
            except OSError as e:
                raise from_os_error(e) from None
        inode = self.inode
        with inode.attr_mu:
            inode.size = max(inode.size, offset + n)
            inode.stale = True
        return n

    def _kill_priv(self, t: Task) -> None:
        """Drops set-ID bits as a write by an unprivileged caller does."""
        inode = self.inode
        mode = kill_priv_on_write(t.creds, inode.mode)
        if mode != inode.mode:
            fs = inode.fs
            with fs.locked():
                fs.setstat(
                    None,
                    t.creds,
                    self.dentry,
                    SetStatOptions(mask=S.STATX_MODE, mode=mode & S.S_IALLUGO),
                    via_fd=True,
                )

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            self.offset = generic_llseek(
                self.offset,
                offset,
                whence,
                self._host_size,
                host_data_or_hole(self.host_fd),
            )
            return self.offset

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        inode = self.inode
        fs = inode.fs
        opts.mappable = inode.file_cache()
        opts.identity = MappingIdentity(
            (fs.dev_major << 8) | fs.dev_minor,
            inode.ino,
            fs.vfs.path_for_display(self.vd).decode(errors="replace"),
        )

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.inode.statx(self.dentry)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        if opts.mask & S.STATX_SIZE and not self.writable:
            raise SyscallError(errno.EINVAL)
        fs = self.inode.fs
        if opts.mask:
            self.vd.mount.check_begin_write()
        with fs.locked():
            fs.setstat(t, t.creds, self.dentry, opts, via_fd=True)

    def statfs(self, t: Task) -> object:
        return self.inode.fs.statfs(self.dentry)

    def allocate(self, t: Task, mode: int, offset: int, length: int) -> None:
        if not self.writable:
            raise SyscallError(errno.EBADF)
        if t is not None:
            check_file_size_limit(t, offset + length, 0)
        try:
            hostcalls.fallocate(self.host_fd, mode, offset, length)
        except OSError as e:
            raise from_os_error(e) from None
        cache = self.inode.cache
        if cache is not None and mode & F.FALLOC_FL_PUNCH_HOLE:
            cache.punch_hole(offset, length)
        self.inode.stale = True

    def sync(self, t: Task) -> None:
        cache = self.inode.cache
        if cache is not None:
            cache.writeback(0, 1 << 63, False)
        try:
            os.fsync(self.host_fd)
        except OSError as e:
            raise from_os_error(e) from None

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with self.pos_mu:
                n = max(0, self._host_size() - self.offset)
            t.mm.write_i32(arg, min(n, 0x7FFFFFFF))
            return 0
        raise SyscallError(errno.ENOTTY)

    def file_locks(self) -> FileLocks | None:
        return self.inode.locks
