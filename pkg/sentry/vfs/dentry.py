"""Dentry and VirtualDentry: nodes of a filesystem tree, and a node as seen
through one mount.

A Dentry is a name in one filesystem's tree. Filesystem implementations
subclass it and own everything about it except what the VFS needs to cross
mounts and to refuse deleting a mount point: how many mounts sit on it and
whether it has been deleted. A file with several hard links has one Dentry
per link; the implementation's inode is what they share.

A VirtualDentry is the pair (Mount, Dentry): the same directory reached
through a bind mount is a different VirtualDentry. Open files, the working
directory and the root hold VirtualDentries, with references, so that a busy
mount cannot be unmounted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import inotify as IN
from pkg.sentry.vfs.watches import Watches

if TYPE_CHECKING:
    from pkg.sentry.vfs.mount import Mount

# inotify event types for Dentry.inotify_with_parent: whether the event is
# about the inode itself or about the path (some events are only reported to
# watches on the inode, not on the parent directory).
INOTIFY_INODE_EVENT = 0
INOTIFY_PATH_EVENT = 1
# Events about a file itself that its directory's watches do not get.
_SELF_EVENTS = IN.IN_DELETE_SELF | IN.IN_MOVE_SELF


class Dentry:
    """Dentry is the VFS part of a filesystem implementation's dentry.

    Subclasses implement parent_dentry, dentry_name (NamedDentry does both
    for dentries in a tree of their own) and, if they hold resources,
    inc_ref/dec_ref.
    """

    __slots__ = ("__weakref__", "_dead", "_mounts", "_watches")

    def __init__(self) -> None:
        # Mounts whose mount point is this dentry (VirtualFilesystem.mu).
        self._mounts = 0
        self._dead = False
        # inotify watches, for filesystems that keep them per dentry.
        self._watches: Watches | None = None

    # Identity in the tree, for path generation (getcwd, /proc/pid/fd).

    def parent_dentry(self) -> Dentry | None:
        """Returns the parent directory's dentry (the last one, for a
        deleted file), or None at the root of the filesystem and for files
        that never had a name."""
        return None

    def dentry_name(self) -> bytes:
        """Returns the name of this dentry in its parent directory."""
        return b""

    def is_dir(self) -> bool:
        """Reports whether this dentry is a directory."""
        return False

    # State the VFS keeps.

    def is_dead(self) -> bool:
        """Reports whether this dentry has been deleted (unlinked, removed,
        or replaced by a rename)."""
        return self._dead

    def set_dead(self) -> None:
        """Marks this dentry deleted. Implementations call this when they
        remove the name (after VirtualFilesystem.prepare_delete_dentry)."""
        self._dead = True

    def is_mountpoint(self) -> bool:
        """Reports whether a mount sits on this dentry."""
        return self._mounts > 0

    # References. Most implementations keep dentries alive by the tree and
    # need no counting; those with host resources override these.

    def inc_ref(self) -> None:
        """Takes a reference."""

    def dec_ref(self) -> None:
        """Drops a reference."""

    # Notification hooks for inotify.

    def watches(self) -> Watches | None:
        """Returns the inotify watches of this dentry's inode, or None when
        nothing has watched it. Filesystems whose inodes can have several
        names (hard links) override this and ensure_watches to keep them on
        the inode; the default keeps them on the dentry."""
        return self._watches

    def inode_key(self) -> object:
        """Returns what identifies this dentry's file among its hard links:
        the implementation's inode where names share one, else the dentry
        (for an overlay to keep the watches of an upper file's links
        together)."""
        return self

    def ensure_watches(self) -> Watches:
        """Returns the inotify watches of this dentry's inode, making them
        if needed (inotify_add_watch)."""
        if self._watches is None:
            self._watches = Watches()
        return self._watches

    def inotify_with_parent(
        self, events: int, cookie: int = 0, et: int = INOTIFY_INODE_EVENT
    ) -> None:
        """Reports inotify events (IN_* of pkg/abi/linux/inotify.py) on this
        file (fsnotify_parent): to watches on the parent directory, naming
        this dentry, and, for an INOTIFY_INODE_EVENT, to watches on the file
        itself. INOTIFY_PATH_EVENT events (IN_CREATE, IN_DELETE,
        IN_MOVED_FROM/TO) concern the name only and go to the parent alone.
        IN_ISDIR is added for a directory; IN_DELETE_SELF ends the file's
        watches (each gets IN_IGNORED). IN_DELETE_SELF and IN_MOVE_SELF are
        the file's own: a directory's watches never hear of them from a
        child (FS_EVENTS_POSS_ON_CHILD).

        Where it is called: the VFS after an open (IN_OPEN);
        FileDescription on its last close (IN_CLOSE_WRITE/NOWRITE) and
        through notify() after reads and writes (IN_ACCESS, IN_MODIFY);
        filesystems when names are created, removed and moved (with a
        cookie from VirtualFilesystem.new_inotify_cookie), when link counts
        change (IN_ATTRIB, IN_DELETE_SELF) and on attribute changes.
        """
        if self.is_dir():
            events |= IN.IN_ISDIR
        inode_event = et == INOTIFY_INODE_EVENT
        parent = self.parent_dentry()
        child_events = events & ~_SELF_EVENTS
        if parent is not None and child_events & ~IN.IN_ISDIR:
            pw = parent.watches()
            if pw:
                # Events on an unlinked child still reach the directory,
                # unless the watch asked for IN_EXCL_UNLINK.
                unlinked = inode_event and self.is_dead()
                pw.notify(self.dentry_name(), child_events, cookie, unlinked)
        if inode_event:
            self.inotify_inode(events)

    def inotify_inode(self, events: int) -> None:
        """Reports events to the watches of this file alone, not its
        directory's (fsnotify_inode): a link count change (IN_ATTRIB from
        link and unlink) or the file's removal (IN_DELETE_SELF, which ends
        its watches)."""
        if self.is_dir():
            events |= IN.IN_ISDIR
        w = self.watches()
        if w:
            w.notify(b"", events, 0)
            if events & IN.IN_DELETE_SELF:
                w.drop_all()

    def inotify_link_count(self, gone: bool, replaced: bool = False) -> None:
        """Reports that this file lost a name: IN_ATTRIB for the link count
        (not for a removed directory; always for one a rename replaced),
        then IN_DELETE_SELF if that was its last (vfs_unlink's and
        fsnotify_move's fsnotify_link_count, then fsnotify_inoderemove)."""
        if replaced or not self.is_dir():
            self.inotify_inode(IN.IN_ATTRIB)
        if gone:
            self.inotify_inode(IN.IN_DELETE_SELF)


class NamedDentry(Dentry):
    """NamedDentry is the base of dentries that keep their parent and name in
    their filesystem's own tree, which is all path generation asks of them.

    Attributes:
        name: the name in the parent directory.
        parent: the parent directory's dentry; None at the root.
    """

    __slots__ = ("name", "parent")

    name: bytes
    parent: NamedDentry | None

    def parent_dentry(self) -> Dentry | None:
        return self.parent

    def dentry_name(self) -> bytes:
        return self.name


class VirtualDentry:
    """VirtualDentry is a (Mount, Dentry) pair: a file reached through one
    mount. It is a value: equal pairs compare and hash equal.
    """

    __slots__ = ("dentry", "mount")

    def __init__(self, mount: Mount, dentry: Dentry) -> None:
        self.mount = mount
        self.dentry = dentry

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, VirtualDentry)
            and self.mount is other.mount
            and self.dentry is other.dentry
        )

    def __hash__(self) -> int:
        return hash((id(self.mount), id(self.dentry)))

    def __repr__(self) -> str:
        return f"VirtualDentry({self.mount!r}, {self.dentry!r})"

    def inc_ref(self) -> None:
        """Takes a reference on the mount and the dentry."""
        self.mount.inc_ref()
        self.dentry.inc_ref()

    def dec_ref(self) -> None:
        """Drops the references inc_ref took."""
        self.dentry.dec_ref()
        self.mount.dec_ref()
