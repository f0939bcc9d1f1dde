"""UTS namespaces: the host and domain names a task sees (uname(2),
sethostname(2)), shared until CLONE_NEWUTS gives a task its own copy
(kernel/utsname.c)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


class UTSNamespace:
    """UTSNamespace holds a host name and a NIS domain name.

    Attributes:
        mu: guards the names, which are replaced whole.
    """

    __slots__ = ("domainname", "hostname", "mu")

    def __init__(self, hostname: str, domainname: str) -> None:
        self.mu = threading.Lock()
        self.hostname = hostname
        self.domainname = domainname

    def clone(self) -> UTSNamespace:
        """Returns a new namespace starting with the same names."""
        with self.mu:
            return UTSNamespace(self.hostname, self.domainname)


def uts_of(t: Task) -> UTSNamespace:
    """Returns the UTS namespace t is in."""
    uts = t.uts_ns
    return uts if uts is not None else t.kernel.root_uts
