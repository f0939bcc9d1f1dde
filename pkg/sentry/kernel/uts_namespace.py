"""UTS namespaces: the host and domain names a task sees (uname(2),
sethostname(2)), shared until CLONE_NEWUTS gives a task its own copy
(kernel/utsname.c)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.sentry.vfs.nsfs import alloc_ns_ino

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


class UTSNamespace:
    """UTSNamespace holds a host name and a NIS domain name.

    Attributes:
        mu: guards the names, which are replaced whole.
        ino: the inode number /proc/pid/ns/uts shows.
    """

    __slots__ = ("domainname", "hostname", "ino", "mu")

    def __init__(self, hostname: str, domainname: str, ino: int = 0) -> None:
        """Makes a namespace; ino 0 allocates a fresh inode number."""
        self.mu = threading.Lock()
        self.hostname = hostname
        self.domainname = domainname
        self.ino = ino or alloc_ns_ino()

    def clone(self) -> UTSNamespace:
        """Returns a new namespace starting with the same names."""
        with self.mu:
            return UTSNamespace(self.hostname, self.domainname)


def uts_of(t: Task) -> UTSNamespace:
    """Returns the UTS namespace t is in."""
    uts = t.uts_ns
    return uts if uts is not None else t.kernel.root_uts
