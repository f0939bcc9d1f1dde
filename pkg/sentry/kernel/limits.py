"""Resource limits of a thread group (getrlimit(2))."""

from __future__ import annotations

from pkg.abi.linux import limits as L

INFINITY = L.RLIM_INFINITY

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
    """LimitSet holds (soft, hard) pairs for every RLIMIT_*."""

    __slots__ = ("_limits",)

    def __init__(self, limits: dict[int, tuple[int, int]] | None = None) -> None:
        self._limits = dict(_DEFAULTS if limits is None else limits)

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
