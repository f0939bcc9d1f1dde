"""InodeAttrs: the attributes an in-memory inode keeps, with Linux's rules
for reading and changing them.

tmpfs inodes, pipe inodes and other sentry-made files share this so that
chmod, chown, utimes and truncate check permissions and drop set-ID bits
the same way everywhere.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import inotify as IN
from pkg.abi.linux import stat as S
from pkg.sentry.vfs.options import UTIME_NOW, UTIME_OMIT
from pkg.sentry.vfs.permissions import (
    apply_set_stat_mode_bits,
    check_set_stat,
    generic_check_permissions,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.options import SetStatOptions


def now_ns() -> int:
    """Returns the current time for file timestamps (CLOCK_REALTIME)."""
    return time.time_ns()


# Inode numbers for files of filesystems that do not number their own.
_anon_inos = itertools.count(1)


def next_anon_ino() -> int:
    """Returns a fresh inode number (get_next_ino)."""
    return next(_anon_inos)


def setstat_events(opts: SetStatOptions) -> int:
    """Returns the inotify events a SetStatOptions change reports (a size
    change is IN_MODIFY, the rest IN_ATTRIB; fsnotify_change)."""
    events = 0
    if opts.mask & S.STATX_SIZE:
        events |= IN.IN_MODIFY
    if opts.mask & ~S.STATX_SIZE:
        events |= IN.IN_ATTRIB
    return events


class InodeAttrs:
    """InodeAttrs holds mode (with file type), owner, group, link count and
    timestamps.

    Attributes:
        attr_mu: guards every attribute.
    """

    __slots__ = (
        "atime_ns",
        "attr_mu",
        "btime_ns",
        "ctime_ns",
        "gid",
        "ino",
        "mode",
        "mtime_ns",
        "nlink",
        "uid",
    )

    def __init__(self, ino: int, mode: int, uid: int, gid: int, nlink: int = 1) -> None:
        self.attr_mu = threading.Lock()
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = nlink
        now = now_ns()
        self.atime_ns = now
        self.mtime_ns = now
        self.ctime_ns = now
        self.btime_ns = now

    # Hooks for subclasses.

    def attr_size(self) -> int:
        """Returns st_size."""
        return 0

    def attr_blocks(self) -> int:
        """Returns st_blocks (512-byte units)."""
        return 0

    def attr_rdev(self) -> tuple[int, int]:
        """Returns the device number of a device node."""
        return (0, 0)

    def set_size(self, t: Task | None, size: int) -> bool:
        """Truncates or extends the file; returns whether the size changed.
        Only regular files get here (check_set_stat refuses the rest)."""
        raise NotImplementedError

    # Reading.

    @property
    def file_type(self) -> int:
        """The S_IFMT bits of the mode."""
        return self.mode & S.S_IFMT

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        """Checks access to this inode (generic_permission)."""
        generic_check_permissions(creds, ats, self.mode, self.uid, self.gid)

    def statx(self, dev_major: int, dev_minor: int, mask: int = 0) -> S.Statx:
        """Returns the inode's attributes as a Statx."""
        rdev_major, rdev_minor = self.attr_rdev()
        return S.Statx(
            mask=S.STATX_BASIC_STATS | S.STATX_BTIME,
            blksize=4096,
            nlink=self.nlink,
            uid=self.uid,
            gid=self.gid,
            mode=self.mode,
            ino=self.ino,
            size=self.attr_size(),
            blocks=self.attr_blocks(),
            atime_ns=self.atime_ns,
            btime_ns=self.btime_ns,
            ctime_ns=self.ctime_ns,
            mtime_ns=self.mtime_ns,
            rdev_major=rdev_major,
            rdev_minor=rdev_minor,
            dev_major=dev_major,
            dev_minor=dev_minor,
        )

    # Changing.

    def setstat(
        self,
        t: Task | None,
        creds: Credentials,
        opts: SetStatOptions,
        via_fd: bool = False,
    ) -> None:
        """Applies chmod/chown/truncate/utimes changes after Linux's checks.

        Raises:
            SyscallError: as check_set_stat.
        """
        mask = opts.mask
        if not mask:
            return
        check_set_stat(t, creds, opts, self.mode, self.uid, self.gid, via_fd)
        now = now_ns()
        changed = False
        if mask & S.STATX_SIZE:
            if self.set_size(t, opts.size) or via_fd:
                with self.attr_mu:
                    self.mtime_ns = now
                changed = True
        with self.attr_mu:
            if mask & (S.STATX_MODE | S.STATX_UID | S.STATX_GID):
                perm = apply_set_stat_mode_bits(creds, opts, self.mode, self.gid)
                self.mode = self.mode & S.S_IFMT | perm
                if mask & S.STATX_UID and opts.uid != -1:
                    self.uid = opts.uid
                if mask & S.STATX_GID and opts.gid != -1:
                    self.gid = opts.gid
                changed = True
            if mask & S.STATX_ATIME and opts.atime_ns != UTIME_OMIT:
                self.atime_ns = now if opts.atime_ns == UTIME_NOW else opts.atime_ns
                changed = True
            if mask & S.STATX_MTIME and opts.mtime_ns != UTIME_OMIT:
                self.mtime_ns = now if opts.mtime_ns == UTIME_NOW else opts.mtime_ns
                changed = True
            if changed:
                self.ctime_ns = now

    def touch_atime(self) -> None:
        """Records an access (relatime is not modelled: always updates)."""
        self.atime_ns = now_ns()

    def touch_cmtime(self) -> None:
        """Records a change of contents (mtime and ctime)."""
        now = now_ns()
        self.mtime_ns = now
        self.ctime_ns = now

    def touch_ctime(self) -> None:
        """Records a change of attributes (ctime)."""
        self.ctime_ns = now_ns()
