"""Resource limits of a thread group (getrlimit(2)) and where the kernel
enforces them.

Enforcement lives with the resource: RLIMIT_NOFILE bounds descriptor
allocation (nofile_limit), RLIMIT_NPROC bounds clone (check_nproc, in
task_clone.py), RLIMIT_FSIZE bounds writes to regular files (the VFS's
check_file_size_limit), RLIMIT_STACK sizes the stack at execve.
RLIMIT_AS, RLIMIT_DATA and RLIMIT_MEMLOCK belong to the memory manager,
RLIMIT_SIGPENDING to signal queueing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import limits as L

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

INFINITY = L.RLIM_INFINITY

# fs.nr_open: the ceiling of RLIMIT_NOFILE and of any descriptor number.
NR_OPEN = 1 << 20

# Linux's defaults for init (include/asm-generic/resource.h INIT_RLIMITS),
# with the nofile and nproc values a container runtime usually sets.
_DEFAULTS = {
    L.RLIMIT_CPU: (INFINITY, INFINITY),
    L.RLIMIT_FSIZE: (INFINITY, INFINITY),
    L.RLIMIT_DATA: (INFINITY, INFINITY),
    L.RLIMIT_STACK: (8 << 20, INFINITY),
    L.RLIMIT_CORE: (0, INFINITY),
    L.RLIMIT_RSS: (INFINITY, INFINITY),
    L.RLIMIT_NPROC: (0x3FFFF, 0x3FFFF),
    L.RLIMIT_NOFILE: (1024, 1048576),
    L.RLIMIT_MEMLOCK: (8 << 20, 8 << 20),
    L.RLIMIT_AS: (INFINITY, INFINITY),
    L.RLIMIT_LOCKS: (INFINITY, INFINITY),
    L.RLIMIT_SIGPENDING: (0x3FFFF, 0x3FFFF),
    L.RLIMIT_MSGQUEUE: (819200, 819200),
    L.RLIMIT_NICE: (0, 0),
    L.RLIMIT_RTPRIO: (0, 0),
    L.RLIMIT_RTTIME: (INFINITY, INFINITY),
}


class LimitSet:
    """LimitSet holds (soft, hard) pairs for every RLIMIT_*.

    Shared by the threads of a process; reads need no lock (a pair is
    replaced whole), read-modify-write sequences hold `mu`.
    """

    __slots__ = ("_limits", "mu")

    def __init__(self, limits: dict[int, tuple[int, int]] | None = None) -> None:
        self._limits = dict(_DEFAULTS if limits is None else limits)
        self.mu = threading.Lock()

    def get(self, resource: int) -> tuple[int, int]:
        """Returns (soft, hard) for resource."""
        return self._limits[resource]

    def soft(self, resource: int) -> int:
        """Returns the soft limit of resource."""
        return self._limits[resource][0]

    def set(self, resource: int, soft: int, hard: int) -> None:
        """Sets both limits of resource; the caller checks privileges."""
        self._limits[resource] = (soft, hard)

    def copy(self) -> LimitSet:
        """Returns an independent copy (fork copies limits)."""
        return LimitSet(self._limits)


def nofile_limit(t: Task) -> int:
    """Returns one past the highest descriptor number t may allocate: its
    process's RLIMIT_NOFILE soft limit, capped at fs.nr_open."""
    return min(t.tg.limits.soft(L.RLIMIT_NOFILE), NR_OPEN)
