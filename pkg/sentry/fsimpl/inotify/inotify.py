"""Inotify: an inotify instance, the file inotify_init1(2) returns
(fs/notify/inotify/inotify_user.c).

The instance owns watch descriptors, each a Watch (pkg/sentry/vfs/
watches.py) on one inode's Watches, and a queue of events that read(2)
returns as struct inotify_event records. An event identical to the last one
queued is merged into it, as Linux does; past max_queued_events one
IN_Q_OVERFLOW event (wd -1) ends the queue until it is read.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections import deque
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import ioctl as I
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.anon.anon_inode import AnonFile
from pkg.sentry.kernel.waiter import EVENT_IN, Entry, Queue
from pkg.sentry.vfs.watches import IN_ALL_EVENTS, Watch

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem

# struct inotify_event: wd, mask, cookie, len, then the name.
_EVENT = struct.Struct("<iIII")
EVENT_SIZE = _EVENT.size
# The file handle fdinfo shows: FILEID_INO64_GEN, a u64 inode number and a
# u32 generation.
FILEID_INO64_GEN = 0x81
_HANDLE_BYTES = 12
# /proc/sys/fs/inotify/max_queued_events's default.
MAX_QUEUED_EVENTS = 16384
# The flags inotify_add_watch accepts besides IN_ALL_EVENTS.
WATCH_FLAGS = (
    IN.IN_ONLYDIR
    | IN.IN_DONT_FOLLOW
    | IN.IN_EXCL_UNLINK
    | IN.IN_MASK_ADD
    | IN.IN_MASK_CREATE
    | IN.IN_ONESHOT
    | IN.IN_ISDIR
)


def pack_event(wd: int, mask: int, cookie: int, name: bytes) -> bytes:
    """Returns one struct inotify_event; the name is NUL-padded to a
    multiple of the header's size (round_event_name_len)."""
    if name:
        padded = (len(name) + EVENT_SIZE) // EVENT_SIZE * EVENT_SIZE
        name = name + bytes(padded - len(name))
    return _EVENT.pack(wd, mask, cookie, len(name)) + name


class Inotify(AnonFile):
    """Inotify is one inotify instance."""

    __slots__ = ("_events", "_mu", "_queued_bytes", "_watches", "_wds", "queue")

    NAME = "inotify"

    def __init__(self, flags: int) -> None:
        super().__init__(F.O_RDONLY | (flags & F.O_NONBLOCK))
        self._mu = threading.Lock()
        self._events: deque[tuple[int, int, int, bytes]] = deque()
        self._queued_bytes = 0
        self._wds = itertools.count(1)
        # Watches by watch descriptor.
        self._watches: dict[int, Watch] = {}
        self.queue = Queue()

    def display_name(self) -> str:
        # Linux names it without brackets (anon_inode_getfd("inotify")).
        return "anon_inode:inotify"

    # Watches.

    def add_watch(
        self,
        d: Dentry,
        mask: int,
        fs: Filesystem | None = None,
        ino: int = 0,
        dev: tuple[int, int] = (0, 0),
    ) -> int:
        """Watches d's inode for the events in mask (inotify_add_watch);
        returns the watch descriptor, an existing one if this instance
        already watches the inode.

        Args:
            fs: the filesystem of d, which reports IN_UNMOUNT when it goes.
            ino, dev: the file's inode number and device, for fdinfo.

        Raises:
            SyscallError: EEXIST for IN_MASK_CREATE on a watched inode.
        """
        watches = d.ensure_watches()
        events = mask & (IN_ALL_EVENTS | IN.IN_EXCL_UNLINK | IN.IN_ONESHOT)
        with watches.mu:
            # Under the inode's lock: two adds of one inode make one watch.
            existing = watches.find_locked(self)
            if existing is not None:
                if mask & IN.IN_MASK_CREATE:
                    raise SyscallError(errno.EEXIST)
                if mask & IN.IN_MASK_ADD:
                    existing.mask |= events
                else:
                    existing.mask = events
                return existing.wd
            with self._mu:
                wd = next(self._wds)
                w = Watch(self, wd, events, watches, ino, dev, d.is_dir())
                self._watches[wd] = w
            watches.insert_locked(w)
        if fs is not None:
            fs.add_watch(w)
        return wd

    def rm_watch(self, wd: int) -> None:
        """Removes a watch (inotify_rm_watch), queueing IN_IGNORED.

        Raises:
            SyscallError: EINVAL if wd is not one of this instance's.
        """
        with self._mu:
            w = self._watches.get(wd)
        if w is None:
            raise SyscallError(errno.EINVAL)
        if w.target.remove(w):
            self.watch_gone(w)

    def watch_gone(self, watch: Watch) -> None:
        with self._mu:
            if self._watches.get(watch.wd) is not watch:
                return
            del self._watches[watch.wd]
        self.queue_event(watch.wd, IN.IN_IGNORED, 0, b"")

    def fdinfo(self) -> str:
        """One line per watch, newest first as Linux lists its marks
        (inotify_fdinfo). The file handle is the generic one of a
        filesystem without its own encoding: FILEID_INO64_GEN, the 64-bit
        inode number and a zero generation."""
        with self._mu:
            watches = sorted(self._watches.values(), key=lambda w: -w.wd)
        lines = []
        for w in watches:
            major, minor = w.dev
            # The kernel's own dev_t layout (MINORBITS 20), not stat's.
            sdev = (major << 20) | minor
            handle = struct.pack("<QI", w.ino & (2**64 - 1), 0).hex()
            lines.append(
                f"inotify wd:{w.wd:x} ino:{w.ino:x} sdev:{sdev:x} "
                f"mask:{w.mask:x} ignored_mask:0 "
                f"fhandle-bytes:{_HANDLE_BYTES:x} "
                f"fhandle-type:{FILEID_INO64_GEN:x} f_handle:{handle}\n"
            )
        return "".join(lines)

    def release(self) -> None:
        with self._mu:
            watches = list(self._watches.values())
            self._watches.clear()
        for w in watches:
            w.target.remove(w)

    # Events.

    def queue_event(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        with self._mu:
            event = (wd, mask, cookie, name)
            if self._events and self._events[-1] == event:
                # Merged with the identical event before it.
                return
            if len(self._events) >= MAX_QUEUED_EVENTS:
                return
            if len(self._events) == MAX_QUEUED_EVENTS - 1:
                event = (-1, IN.IN_Q_OVERFLOW, 0, b"")
            self._events.append(event)
            self._queued_bytes += len(pack_event(*event))
        self.queue.notify(EVENT_IN)

    def _take(self, length: int) -> bytes | None:
        """Takes the whole events that fit in length bytes; None if there
        are none.

        Raises:
            SyscallError: EINVAL if the first event does not fit.
        """
        out = bytearray()
        with self._mu:
            if not self._events:
                return None
            while self._events:
                record = pack_event(*self._events[0])
                if len(out) + len(record) > length:
                    break
                self._events.popleft()
                self._queued_bytes -= len(record)
                out += record
        if not out:
            raise SyscallError(errno.EINVAL)
        return bytes(out)

    def read(self, t: Task, length: int) -> bytes:
        """Returns queued events, blocking until there are some unless the
        file is non-blocking (EAGAIN).

        Raises:
            SyscallError: EINVAL if the buffer cannot hold the next event,
                EAGAIN, ERESTARTSYS when interrupted.
        """
        data = self._take(length)
        if data is not None:
            return data
        if self.nonblocking:
            raise SyscallError(errno.EAGAIN)
        entry = Entry(lambda _mask: t.wake(), EVENT_IN)
        self.queue.register(entry)
        try:
            while True:
                data = self._take(length)
                if data is not None:
                    return data
                t.block()
        finally:
            self.queue.unregister(entry)

    def write(self, t: Task, data: bytes) -> int:
        raise SyscallError(errno.EBADF)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        raise SyscallError(errno.ESPIPE)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with self._mu:
                n = self._queued_bytes
            t.mm.write_i32(arg, n)
            return 0
        raise SyscallError(errno.ENOTTY)

    def readiness(self, mask: int) -> int:
        return mask & EVENT_IN if self._events else 0

    def event_register(self, entry: Entry) -> None:
        self.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.queue.unregister(entry)
