"""Inode numbers of namespaces, as /proc/pid/ns/<kind> and nsfs files show
them (proc_alloc_inum).

Linux numbers its initial namespaces with fixed values and allocates the
numbers of later ones from the proc inode range. The same number means the
same namespace: tools compare them to tell whether two processes share one.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux.stat import Statx
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.file_description import FileDescription
from pkg.sentry.vfs.mount import MountNamespace

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# The fixed numbers of the initial namespaces (PROC_*_INIT_INO).
INIT_CGROUP_NS_INO = 4026531835
INIT_IPC_NS_INO = 4026531839
INIT_MNT_NS_INO = 4026531841
INIT_NET_NS_INO = 4026531840
INIT_PID_NS_INO = 4026531836
INIT_TIME_NS_INO = 4026531834
INIT_USER_NS_INO = 4026531837
INIT_UTS_NS_INO = 4026531838

# The anonymous device minor of nsfs, as Linux's first is.
NSFS_MINOR = 4

# Later namespaces get numbers above those Linux hands out at boot.
_FIRST_DYNAMIC_INO = 0xF0000000 + 0x200
_next_ino = itertools.count(_FIRST_DYNAMIC_INO)
_next_ino_mu = threading.Lock()


def alloc_ns_ino() -> int:
    """Returns an inode number no other namespace of the process has."""
    with _next_ino_mu:
        return next(_next_ino)


class NsFile(FileDescription):
    """NsFile is an open namespace (an nsfs file), what opening
    /proc/pid/ns/<kind> gives: stat shows the namespace's inode, and
    setns(2) joins it.

    A file of a mount namespace keeps the namespace, and so its mounts,
    alive until it is closed.

    Attributes:
        kind: the name in /proc/pid/ns ("mnt", "uts", ...).
        ino: the namespace's inode number.
        ns: the namespace for kinds that exist (a MountNamespace or a
            UTSNamespace); None for the sandbox's single namespaces of the
            other kinds.
    """

    __slots__ = ("ino", "kind", "ns")

    def __init__(
        self, kind: str, ino: int, ns: object | None = None, flags: int = F.O_RDONLY
    ) -> None:
        """Opens the namespace ns (which, for a MountNamespace, the caller
        has taken a reference on for the file)."""
        super().__init__(flags & F.O_ACCMODE | F.O_LARGEFILE)
        self.kind = kind
        self.ino = ino
        self.ns = ns

    def release(self) -> None:
        if _refcounted(self.ns):
            self.ns.dec_ref()  # type: ignore[union-attr]

    def stat(self, t: Task, mask: int) -> Statx:
        return Statx(
            mask=S.STATX_BASIC_STATS,
            blksize=4096,
            nlink=1,
            mode=S.S_IFREG | 0o444,
            ino=self.ino,
            dev_minor=NSFS_MINOR,
        )

    def reopen(self, t: Task | None, flags: int) -> FileDescription:
        if flags & F.O_ACCMODE != F.O_RDONLY:
            raise SyscallError(errno.EACCES)
        if _refcounted(self.ns) and not self.ns.try_inc_ref():  # type: ignore[union-attr]
            raise SyscallError(errno.ENOENT)
        return NsFile(self.kind, self.ino, self.ns, flags)

    def display_name(self) -> str:
        return f"{self.kind}:[{self.ino}]"


def _refcounted(ns: object | None) -> bool:
    """Reports whether an open file keeps ns alive with a reference (mount
    and IPC namespaces, which are freed with their last user)."""
    return isinstance(ns, MountNamespace) or hasattr(ns, "try_inc_ref")
