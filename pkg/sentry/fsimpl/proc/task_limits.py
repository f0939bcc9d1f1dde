"""/proc/[pid]/limits and the OOM killer's knobs, oom_score_adj and
oom_adj (fs/proc/base.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_RESOURCE
from pkg.sentry.kernel.limits import INFINITY

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.proc.task_files import TaskRef
    from pkg.sentry.kernel.task import Task

# /proc/pid/limits rows: (title, resource, unit).
_LIMITS = (
    ("Max cpu time", L.RLIMIT_CPU, "seconds"),
    ("Max file size", L.RLIMIT_FSIZE, "bytes"),
    ("Max data size", L.RLIMIT_DATA, "bytes"),
    ("Max stack size", L.RLIMIT_STACK, "bytes"),
    ("Max core file size", L.RLIMIT_CORE, "bytes"),
    ("Max resident set", L.RLIMIT_RSS, "bytes"),
    ("Max processes", L.RLIMIT_NPROC, "processes"),
    ("Max open files", L.RLIMIT_NOFILE, "files"),
    ("Max locked memory", L.RLIMIT_MEMLOCK, "bytes"),
    ("Max address space", L.RLIMIT_AS, "bytes"),
    ("Max file locks", L.RLIMIT_LOCKS, "locks"),
    ("Max pending signals", L.RLIMIT_SIGPENDING, "signals"),
    ("Max msgqueue size", L.RLIMIT_MSGQUEUE, "bytes"),
    ("Max nice priority", L.RLIMIT_NICE, ""),
    ("Max realtime priority", L.RLIMIT_RTPRIO, ""),
    ("Max realtime timeout", L.RLIMIT_RTTIME, "us"),
)
# oom_score_adj bounds (OOM_SCORE_ADJ_MIN/MAX).
OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000


def limits(ref: TaskRef, t: Task | None) -> bytes:
    """Renders /proc/pid/limits (proc_pid_limits)."""
    rl = ref.tg.limits
    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}"]
    for title, resource, unit in _LIMITS:
        soft, hard = rl.get(resource)
        s = "unlimited" if soft == INFINITY else str(soft)
        h = "unlimited" if hard == INFINITY else str(hard)
        out.append(f"{title:<25} {s:<20} {h:<20} {unit:<10}".rstrip(" ") + " ")
    return ("\n".join(out) + "\n").encode()


def oom_score_adj(ref: TaskRef, t: Task | None) -> bytes:
    """Renders /proc/pid/oom_score_adj."""
    return b"%d\n" % ref.tg.oom_score_adj


def write_oom_score_adj(ref: TaskRef, t: Task, data: bytes) -> int:
    """Sets /proc/pid/oom_score_adj (__set_oom_adj).

    Raises:
        SyscallError: EINVAL for a value out of range, EACCES for lowering
            it below the floor without CAP_SYS_RESOURCE.
    """
    try:
        value = int(data.strip() or b"x")
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    if not OOM_SCORE_ADJ_MIN <= value <= OOM_SCORE_ADJ_MAX:
        raise SyscallError(errno.EINVAL)
    # Lowering it below the lowest value set without privilege needs
    # CAP_SYS_RESOURCE (__set_oom_adj).
    tg = ref.tg
    if value < tg.oom_score_adj_min and not t.creds.has_capability(CAP_SYS_RESOURCE):
        raise SyscallError(errno.EACCES)
    tg.oom_score_adj = value
    if not t.creds.has_capability(CAP_SYS_RESOURCE):
        tg.oom_score_adj_min = value
    return len(data)


def oom_adj(ref: TaskRef, t: Task | None) -> bytes:
    """Renders /proc/pid/oom_adj, the old scale of oom_score_adj."""
    adj = ref.tg.oom_score_adj
    # OOM_ADJUST_MAX scaling of the old interface.
    old = -17 if adj == OOM_SCORE_ADJ_MIN else adj * 15 // OOM_SCORE_ADJ_MAX
    return b"%d\n" % old
