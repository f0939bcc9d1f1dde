"""A test-mode seccomp filter that kills the sentry if it looks up a host
path after start-up.

DESIGN.md requires that once the application starts, the sentry reaches
host files only through descriptors it already holds or is given (the
gofer's). --TESTONLY-forbid-host-open installs this filter on every sentry
thread just before the container's first task runs: opening, executing, or
stat-ing a host path by name then kills the whole sandbox with SIGSYS, so a
test that runs a workload under the flag fails loudly when any code path
(a lazy import, a stray open(), a filesystem reading the host) names a host
path. Calls that work on descriptors (fstat, i.e. newfstatat or statx with
AT_EMPTY_PATH) stay allowed.

The production filter (runsc/boot/filter) refuses the same calls with EPERM
so that a mistake costs an error, not the container; this one kills so that
a mistake cannot go unnoticed.
"""

from __future__ import annotations

import logging

from pkg.seccomp import seccomp as sc

log = logging.getLogger(__name__)

_AT_EMPTY_PATH = 0x1000

# x86-64 numbers of the calls that look up a path (by name or relative to a
# descriptor), with the index of their flags argument when AT_EMPTY_PATH can
# make them work on a descriptor instead.
_PATH_CALLS: dict[str, tuple[int, int | None]] = {
    "open": (2, None),
    "stat": (4, None),
    "lstat": (6, None),
    "access": (21, None),
    "execve": (59, None),
    "creat": (85, None),
    "readlink": (89, None),
    "openat": (257, None),
    "newfstatat": (262, 3),
    "readlinkat": (267, None),
    "faccessat": (269, None),
    "execveat": (322, None),
    "statx": (332, 2),
    "openat2": (437, None),
    "faccessat2": (439, None),
}


def rules() -> list[sc.Rule]:
    """Returns the guard's rules: kill on every path lookup."""
    out = []
    for nr, flags_arg in _PATH_CALLS.values():
        conds: tuple[sc.ArgCond, ...] = ()
        if flags_arg is not None:
            conds = (sc.ArgCond(flags_arg, _AT_EMPTY_PATH, 0),)
        out.append(sc.Rule(nr, sc.SECCOMP_RET_KILL_PROCESS, conds))
    return out


def install() -> None:
    """Installs the guard on every thread of this process."""
    log.info("boot: forbidding host path lookups from now on (test mode)")
    for h in logging.getLogger().handlers:
        h.flush()
    sc.install(rules(), sc.SECCOMP_RET_ALLOW)
