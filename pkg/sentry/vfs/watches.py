"""Watches: the inotify watches on one inode (fs/notify/inotify).

An inode that something watches holds a Watches object; each Watch in it
belongs to one inotify instance (the Watcher protocol below, implemented by
pkg/sentry/fsimpl/inotify) and has that instance's watch descriptor and
mask. Filesystems do not deal with watches directly: they report events
through Dentry.inotify_with_parent, which finds the Watches of the file and
of its parent directory (Dentry.watches) and calls notify on them.

Locking: Watches.mu guards the set of watches of one inode; an instance's
own lock guards its queue and is taken after Watches.mu, never before
(an instance that removes its watches releases its lock first).
"""

from __future__ import annotations

import threading
from typing import Protocol

from pkg.abi.linux import inotify as IN

# Events every watch gets whatever its mask (IN_ALL_EVENTS excluded).
ALWAYS_REPORTED = IN.IN_UNMOUNT | IN.IN_Q_OVERFLOW | IN.IN_IGNORED
# The events a watch's mask may ask for.
IN_ALL_EVENTS = (
    IN.IN_ACCESS
    | IN.IN_MODIFY
    | IN.IN_ATTRIB
    | IN.IN_CLOSE_WRITE
    | IN.IN_CLOSE_NOWRITE
    | IN.IN_OPEN
    | IN.IN_MOVED_FROM
    | IN.IN_MOVED_TO
    | IN.IN_CREATE
    | IN.IN_DELETE
    | IN.IN_DELETE_SELF
    | IN.IN_MOVE_SELF
)


class Watcher(Protocol):
    """Watcher is what a Watch delivers to: an inotify instance."""

    def queue_event(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        """Queues one event."""

    def watch_gone(self, watch: Watch) -> None:
        """Forgets a watch its inode dropped (the inode was deleted, or a
        one-shot watch fired); queues IN_IGNORED."""


class Watch:
    """Watch is one inotify watch on an inode.

    Attributes:
        owner: the inotify instance.
        wd: its watch descriptor.
        mask: the IN_* events and flags asked for (mu of the Watches).
        target: the Watches it belongs to.
        ino, dev: the inode number and (major, minor) device of the watched
            file, for /proc/pid/fdinfo.
        is_dir: the file is a directory (IN_ISDIR with IN_UNMOUNT).
    """

    __slots__ = (
        "__weakref__",
        "dev",
        "ino",
        "is_dir",
        "mask",
        "owner",
        "target",
        "wd",
    )

    def __init__(
        self,
        owner: Watcher,
        wd: int,
        mask: int,
        target: Watches,
        ino: int = 0,
        dev: tuple[int, int] = (0, 0),
        is_dir: bool = False,
    ) -> None:
        self.owner = owner
        self.is_dir = is_dir
        self.wd = wd
        self.mask = mask
        self.target = target
        self.ino = ino
        self.dev = dev


class Watches:
    """Watches holds the watches of one inode, by inotify instance."""

    __slots__ = ("_by_owner", "mu")

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self._by_owner: dict[int, Watch] = {}

    def __bool__(self) -> bool:
        return bool(self._by_owner)

    def lookup(self, owner: Watcher) -> Watch | None:
        """Returns owner's watch on this inode, if any."""
        with self.mu:
            return self._by_owner.get(id(owner))

    def find_locked(self, owner: Watcher) -> Watch | None:
        """Returns owner's watch here. Preconditions: mu is held."""
        return self._by_owner.get(id(owner))

    def insert_locked(self, watch: Watch) -> None:
        """Adds a watch. Preconditions: mu is held; its owner has none
        here."""
        self._by_owner[id(watch.owner)] = watch

    def add(self, watch: Watch) -> None:
        """Adds a watch (its owner has none here yet)."""
        with self.mu:
            self._by_owner[id(watch.owner)] = watch

    def remove(self, watch: Watch) -> bool:
        """Removes watch; returns False if it was already gone."""
        with self.mu:
            if self._by_owner.get(id(watch.owner)) is watch:
                del self._by_owner[id(watch.owner)]
                return True
            return False

    def notify(
        self,
        name: bytes,
        events: int,
        cookie: int,
        unlinked: bool = False,
    ) -> None:
        """Delivers events to the watches that want them; name is the
        child's for a directory watch reporting on a child, else empty.

        Args:
            unlinked: the child has been unlinked: watches with
                IN_EXCL_UNLINK do not hear of it.
        """
        with self.mu:
            watches = list(self._by_owner.values())
        for w in watches:
            wanted = w.mask & events & IN_ALL_EVENTS
            always = events & ALWAYS_REPORTED
            if not wanted and not always:
                continue
            if name and unlinked and w.mask & IN.IN_EXCL_UNLINK:
                continue
            w.owner.queue_event(
                w.wd, wanted | always | (events & IN.IN_ISDIR), cookie, name
            )
            if w.mask & IN.IN_ONESHOT and self.remove(w):
                w.owner.watch_gone(w)

    def adopt(self, other: Watches) -> None:
        """Takes other's watches over (two sets of watches turned out to be
        on one file); an instance watching through both keeps the one it
        had here."""
        with other.mu:
            moving = list(other._by_owner.values())
            other._by_owner.clear()
        dropped = []
        with self.mu:
            for w in moving:
                if id(w.owner) in self._by_owner:
                    dropped.append(w)
                    continue
                w.target = self
                self._by_owner[id(w.owner)] = w
        for w in dropped:
            w.owner.watch_gone(w)

    def unmount(self, watch: Watch) -> None:
        """Ends watch because its filesystem went away: IN_UNMOUNT, then
        IN_IGNORED (fsnotify_unmount_inodes)."""
        if self.remove(watch):
            isdir = IN.IN_ISDIR if watch.is_dir else 0
            watch.owner.queue_event(watch.wd, IN.IN_UNMOUNT | isdir, 0, b"")
            watch.owner.watch_gone(watch)

    def drop_all(self) -> None:
        """Removes every watch, each owner queueing IN_IGNORED: the inode
        is gone (after IN_DELETE_SELF)."""
        with self.mu:
            watches = list(self._by_owner.values())
            self._by_owner.clear()
        for w in watches:
            w.owner.watch_gone(w)
