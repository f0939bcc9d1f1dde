"""The memory devices: /dev/null, /dev/zero, /dev/full, /dev/random and
/dev/urandom (drivers/char/mem.c, drivers/char/random.c), and /dev/tty.

Each is a Device registered with the VirtualFilesystem under its Linux
device number; the nodes themselves live in whatever filesystem holds them
(the sandbox's /dev tmpfs).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.device import CHAR_DEVICE, Device, RegisterDeviceOptions
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.options import OpenOptions
    from pkg.sentry.vfs.vfs import VirtualFilesystem

MEM_MAJOR = 1
NULL_MINOR = 3
ZERO_MINOR = 5
FULL_MINOR = 7
RANDOM_MINOR = 8
URANDOM_MINOR = 9
TTYAUX_MAJOR = 5
TTY_MINOR = 0

# The most one read of these devices returns at once.
_MAX_READ = 1 << 20


class _MemFD(FileDescription):
    """_MemFD is an open memory device; seeking always lands at 0."""

    __slots__ = ()

    def __init__(self, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        return self.read(t, length)

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        return self.write(t, data)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        return 0


class NullFD(_MemFD):
    """NullFD reads as end of file and swallows writes."""

    __slots__ = ()

    def read(self, t: Task, length: int) -> bytes:
        return b""

    def write(self, t: Task, data: bytes) -> int:
        return len(data)


class ZeroFD(_MemFD):
    """ZeroFD reads zeroes and swallows writes; mapping it maps anonymous
    memory (shared memory for MAP_SHARED), as mmap_zero does."""

    __slots__ = ()

    def read(self, t: Task, length: int) -> bytes:
        return bytes(min(length, _MAX_READ))

    def write(self, t: Task, data: bytes) -> int:
        return len(data)

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        opts.mappable = None
        opts.file = None
        opts.offset = 0


class FullFD(_MemFD):
    """FullFD reads zeroes; writes fail with ENOSPC."""

    __slots__ = ()

    def read(self, t: Task, length: int) -> bytes:
        return bytes(min(length, _MAX_READ))

    def write(self, t: Task, data: bytes) -> int:
        raise SyscallError(errno.ENOSPC)


class RandomFD(_MemFD):
    """RandomFD reads the host's random bytes; writes are accepted (and
    mix nothing in)."""

    __slots__ = ()

    def read(self, t: Task, length: int) -> bytes:
        return os.urandom(min(length, _MAX_READ))

    def write(self, t: Task, data: bytes) -> int:
        return len(data)


class _SimpleDevice(Device):
    def __init__(self, cls: type[_MemFD]) -> None:
        self._cls = cls

    def open(
        self, t: Task | None, vd: VirtualDentry, opts: OpenOptions
    ) -> FileDescription:
        return self._cls(opts.flags, vd)


class _TtyDevice(Device):
    """/dev/tty: the controlling terminal of the opener's session (tty_open
    of TTYAUX_MAJOR, 0): a devpts terminal, or the host terminal the
    container was started on. Without one, ENXIO."""

    def open(
        self, t: Task | None, vd: VirtualDentry, opts: OpenOptions
    ) -> FileDescription:
        if t is None:
            raise SyscallError(errno.ENXIO)
        with t.kernel.tasks.mu:
            # A process that gave the terminal up (TIOCNOTTY) has none.
            pg = t.tg.process_group
            tty = pg.session.tty if pg is not None else None
            if t.tg.ctty_detached:
                tty = None
        # The terminal objects (devpts's Terminal, the host's HostFile)
        # know how to open themselves again.
        open_tty = getattr(tty, "open_tty", None)
        if open_tty is None:
            raise SyscallError(errno.ENXIO)
        return open_tty(t, vd, opts.flags)


# (name, major, minor, device) of every device registered here.
DEVICES = (
    ("null", MEM_MAJOR, NULL_MINOR, _SimpleDevice(NullFD)),
    ("zero", MEM_MAJOR, ZERO_MINOR, _SimpleDevice(ZeroFD)),
    ("full", MEM_MAJOR, FULL_MINOR, _SimpleDevice(FullFD)),
    ("random", MEM_MAJOR, RANDOM_MINOR, _SimpleDevice(RandomFD)),
    ("urandom", MEM_MAJOR, URANDOM_MINOR, _SimpleDevice(RandomFD)),
    ("tty", TTYAUX_MAJOR, TTY_MINOR, _TtyDevice()),
)


def register(vfs: VirtualFilesystem) -> None:
    """Registers the memory devices and /dev/tty with vfs."""
    for _name, major, minor, dev in DEVICES:
        group = "mem" if major == MEM_MAJOR else "/dev/tty"
        vfs.register_device(
            CHAR_DEVICE, major, minor, dev, RegisterDeviceOptions(group)
        )
