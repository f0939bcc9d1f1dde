"""Open regular files of the overlay.

An OverlayRegularFD wraps an open file of the layer that holds the file and
keeps the file offset itself (generic code such as splice(2) and the lock
calls reads `offset`); I/O goes to the layer file at explicit offsets. One
opened for reading before the file was copied up switches to the upper copy
on its next operation, so that it sees what later writers wrote (as Linux's
overlayfs has done since 4.19).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.overlay import copy_up
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.llseek import generic_llseek
from pkg.sentry.vfs.options import OpenOptions

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.overlay.dentry import OverlayDentry
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.waiter import Entry
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions

# Largest file offset (MAX_LFS_FILESIZE).

# Flags that act once, at open, and must not reach the layer again.
_OPEN_ONLY = F.O_CREAT | F.O_EXCL | F.O_NOCTTY | F.O_NOFOLLOW | F.O_DIRECTORY


def _open_layer(d: OverlayDentry, flags: int) -> tuple[FileDescription, bool]:
    """Opens the layer file holding d. Returns (file, is_upper)."""
    fs = d.fs
    layer, ld = fs.effective(d)
    fd = fs.vfs.open_at(
        None,
        fs.creds,
        layer.here(ld),
        OpenOptions((flags & ~_OPEN_ONLY) | F.O_LARGEFILE),
    )
    return fd, layer is fs.upper


class OverlayRegularFD(FileDescription):
    """OverlayRegularFD is an open regular file of an overlay."""

    __slots__ = ("_layer", "_on_upper", "dentry")

    def __init__(
        self,
        dentry: OverlayDentry,
        flags: int,
        vd: VirtualDentry,
        layer: FileDescription,
        on_upper: bool,
    ) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.dentry = dentry
        self._layer = layer
        self._on_upper = on_upper

    @classmethod
    def open(
        cls, d: OverlayDentry, flags: int, vd: VirtualDentry, created: bool
    ) -> OverlayRegularFD:
        """Opens d, copying it up first if the open may change it.
        Precondition: the overlay's mu held."""
        acc = flags & F.O_ACCMODE
        if acc in (F.O_WRONLY, F.O_RDWR) or flags & F.O_TRUNC:
            copy_up.copy_up(d.fs, d, with_data=not flags & F.O_TRUNC)
        layer, on_upper = _open_layer(d, flags)
        return cls(d, flags, vd, layer, on_upper)

    def _file(self) -> FileDescription:
        """Returns the layer file, moving to the upper copy if there is one
        now."""
        if self._on_upper:
            return self._layer
        d = self.dentry
        with d.fs.mu:
            if self._on_upper or d.upper is None:
                return self._layer
            old = self._layer
            new, self._on_upper = _open_layer(d, self.flags & ~F.O_TRUNC)
            self._layer = new
        old.dec_ref()
        return new

    def release(self) -> None:
        self._layer.dec_ref()

    def read(self, t: Task, length: int) -> bytes:
        with self.pos_mu:
            data = self._file().pread(t, length, self.offset)
            self.offset += len(data)
        if data:
            self.notify(IN.IN_ACCESS)
        return data

    def pread(self, t: Task | None, length: int, offset: int) -> bytes:
        data = self._file().pread(t, length, offset)  # type: ignore[arg-type]
        if data:
            self.notify(IN.IN_ACCESS)
        return data

    def write(self, t: Task, data: bytes) -> int:
        with self.pos_mu:
            f = self._file()
            # An O_APPEND layer file writes at its end whatever the offset.
            n = f.pwrite(t, data, self.offset)
            if self.flags & F.O_APPEND:
                self.offset = self._size(t, f)
            else:
                self.offset += n
        if n:
            self.notify(IN.IN_MODIFY)
        return n

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        n = self._file().pwrite(t, data, offset)
        if n:
            self.notify(IN.IN_MODIFY)
        return n

    @staticmethod
    def _size(t: Task | None, f: FileDescription) -> int:
        return f.stat(t, S.STATX_SIZE).size  # type: ignore[arg-type]

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            # The layer file finds data and holes (its own offset is not
            # otherwise used).
            self.offset = generic_llseek(
                self.offset,
                offset,
                whence,
                lambda: self._size(t, self._file()),
                lambda off, wh: self._file().seek(t, off, wh),
            )
            return self.offset

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            # The offset is ours, not the layer file's.
            with self.pos_mu:
                n = max(0, self._size(t, self._file()) - self.offset)
            t.mm.write_i32(arg, min(n, 0x7FFFFFFF))
            return 0
        return self._file().ioctl(t, cmd, arg)

    def allocate(self, t: Task, mode: int, offset: int, length: int) -> None:
        self._file().allocate(t, mode, offset, length)

    def sync(self, t: Task) -> None:
        self._file().sync(t)

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        self._file().configure_mmap(t, opts)
        # /proc/pid/maps names the overlay's file, not the layer's.
        st = self.stat(t, S.STATX_INO)
        assert self.vd is not None
        path = self.vd.mount.vfs.path_for_display(self.vd)
        opts.identity = MappingIdentity(
            S.make_dev(st.dev_major, st.dev_minor),
            st.ino,
            path.decode(errors="replace"),
        )

    def readiness(self, mask: int) -> int:
        return self._file().readiness(mask)

    def event_register(self, entry: Entry) -> None:
        self._file().event_register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self._file().event_unregister(entry)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.dentry.fs.statx(self.dentry)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        if opts.mask & S.STATX_SIZE and not self.writable:
            raise SyscallError(errno.EINVAL)
        if opts.mask:
            self.vd.mount.check_begin_write()
        fs = self.dentry.fs
        with fs.mu:
            fs.setstat(t, t.creds, self.dentry, opts, via_fd=True)

    def file_locks(self) -> FileLocks | None:
        return self.dentry.locks
