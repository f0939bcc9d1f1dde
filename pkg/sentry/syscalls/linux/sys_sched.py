"""Scheduling: sched_yield(2), sched_setaffinity(2), sched_getaffinity(2),
sched_setscheduler(2), sched_getscheduler(2), sched_setparam(2),
sched_setattr(2), sched_getattr(2),
sched_getparam(2), sched_get_priority_max(2), sched_get_priority_min(2),
sched_rr_get_interval(2), getpriority(2), setpriority(2) and getcpu(2).

Unlike Linux, policies, priorities, nice values and affinity are recorded
and reported but not applied to the host threads that run tasks (see
pkg/sentry/kernel/task_sched.py). The checks and errors are Linux's
(kernel/sched/syscalls.c, kernel/sys.c).
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import sched as SC
from pkg.abi.linux import sysno as N
from pkg.abi.linux.mman import PAGE_SIZE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_NICE
from pkg.sentry.kernel.task_sched import MAX_NICE, MAX_RT_PRIO, MIN_NICE
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

PRIO_PROCESS = 0
PRIO_PGRP = 1
PRIO_USER = 2

_POLICIES = (
    SC.SCHED_OTHER,
    SC.SCHED_FIFO,
    SC.SCHED_RR,
    SC.SCHED_BATCH,
    SC.SCHED_IDLE,
    SC.SCHED_DEADLINE,
)
_RT_POLICIES = (SC.SCHED_FIFO, SC.SCHED_RR)
# sched_rr_get_interval: SCHED_RR's quantum (RR_TIMESLICE), and what a fair
# task reports (one tick of a 250 Hz kernel).
_RR_TIMESLICE_NS = 100_000_000
_FAIR_SLICE_NS = 4_000_000
_TIMESPEC = struct.Struct("<qq")

_libc = ctypes.CDLL(None, use_errno=True)
_host_cpus = sorted(os.sched_getaffinity(0))


def _find_task(t: Task, pid: int) -> Task:
    """Returns the thread pid names, the caller for 0 (find_process_by_pid)."""
    if pid == 0:
        return t
    found = t.kernel.tasks.find_task(pid)
    if found is None:
        raise SyscallError(errno.ESRCH)
    return found


def _same_owner(t: Task, target: Task) -> bool:
    c, tc = t.creds, target.creds
    return c.euid in (tc.euid, tc.ruid)


def sys_sched_yield(t: Task, args: Args) -> int:
    """sched_yield(2)."""
    os.sched_yield()
    return 0


def _cpumask_size(t: Task) -> int:
    """cpumask_size(): the bytes of a mask of every sandbox CPU, in longs."""
    return (t.kernel.num_cpus + 63) // 64 * 8


def sys_sched_getaffinity(t: Task, args: Args) -> int:
    """sched_getaffinity(2): returns the size of the mask written."""
    pid, length, addr = s32(args[0]), u32(args[1]), args[2]
    if length * 8 < t.kernel.num_cpus or length % 8:
        raise SyscallError(errno.EINVAL)
    target = _find_task(t, pid)
    size = min(length, _cpumask_size(t))
    mask = target.sched.cpu_mask & t.kernel.all_cpus_mask()
    t.copy_out(addr, mask.to_bytes(size, "little"))
    return size


def sys_sched_setaffinity(t: Task, args: Args) -> int:
    """sched_setaffinity(2)."""
    pid, length, addr = s32(args[0]), u32(args[1]), args[2]
    size = min(length, _cpumask_size(t))
    mask = int.from_bytes(t.copy_in(addr, size), "little")
    target = _find_task(t, pid)
    if not _same_owner(t, target) and not t.creds.has_capability(CAP_SYS_NICE):
        raise SyscallError(errno.EPERM)
    mask &= t.kernel.all_cpus_mask()
    if not mask:
        raise SyscallError(errno.EINVAL)
    target.sched.cpu_mask = mask
    return 0


def sys_getcpu(t: Task, args: Args) -> int:
    """getcpu(2): the sandbox CPU the task's host thread runs on, kept
    within the task's affinity mask; NUMA node 0."""
    cpu_addr, node_addr = args[0], args[1]
    mask = t.sched.cpu_mask & t.kernel.all_cpus_mask()
    host = _libc.sched_getcpu()
    cpu = _host_cpus.index(host) % t.kernel.num_cpus if host in _host_cpus else 0
    if not mask >> cpu & 1:
        cpu = (mask & -mask).bit_length() - 1
    if cpu_addr:
        t.mm.write_u32(cpu_addr, cpu)
    if node_addr:
        t.mm.write_u32(node_addr, 0)
    return 0


def _check_setscheduler(
    t: Task, target: Task, policy: int, prio: int, reset: bool
) -> None:
    """Applies user_check_sched_setscheduler's rules.

    Raises:
        SyscallError: EPERM without CAP_SYS_NICE where one is needed.
    """
    if t.creds.has_capability(CAP_SYS_NICE):
        return
    sched = target.sched
    rtprio = target.tg.limits.soft(L.RLIMIT_RTPRIO)
    denied = False
    if policy in _RT_POLICIES:
        if policy != sched.policy and not rtprio:
            denied = True
        if prio > sched.priority and prio > rtprio:
            denied = True
    if policy == SC.SCHED_DEADLINE:
        denied = True
    if sched.policy == SC.SCHED_IDLE and policy != SC.SCHED_IDLE:
        # Leaving SCHED_IDLE counts as raising priority from nice 20.
        if 20 - sched.nice > target.tg.limits.soft(L.RLIMIT_NICE):
            denied = True
    if not _same_owner(t, target):
        denied = True
    if sched.reset_on_fork and not reset:
        denied = True
    if denied:
        raise SyscallError(errno.EPERM)


def _setscheduler(t: Task, pid: int, policy: int, param_addr: int) -> int:
    if not param_addr or pid < 0:
        raise SyscallError(errno.EINVAL)
    prio = t.mm.read_u32(param_addr)
    target = _find_task(t, pid)
    sched = target.sched
    if policy < 0:
        # sched_setparam: keep the policy.
        policy = sched.policy
        reset = sched.reset_on_fork
    else:
        reset = bool(policy & SC.SCHED_RESET_ON_FORK)
        policy &= ~SC.SCHED_RESET_ON_FORK
        if policy not in _POLICIES:
            raise SyscallError(errno.EINVAL)
    if prio > MAX_RT_PRIO:
        raise SyscallError(errno.EINVAL)
    if policy == SC.SCHED_DEADLINE or (policy in _RT_POLICIES) != (prio != 0):
        raise SyscallError(errno.EINVAL)
    _check_setscheduler(t, target, policy, prio, reset)
    sched.policy = policy
    sched.priority = prio
    sched.reset_on_fork = reset
    return 0


def sys_sched_setscheduler(t: Task, args: Args) -> int:
    """sched_setscheduler(2)."""
    policy = s32(args[1])
    if policy < 0:
        raise SyscallError(errno.EINVAL)
    return _setscheduler(t, s32(args[0]), policy, args[2])


def sys_sched_setparam(t: Task, args: Args) -> int:
    """sched_setparam(2)."""
    return _setscheduler(t, s32(args[0]), -1, args[1])


def sys_sched_getscheduler(t: Task, args: Args) -> int:
    """sched_getscheduler(2)."""
    pid = s32(args[0])
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    sched = _find_task(t, pid).sched
    return sched.policy | (SC.SCHED_RESET_ON_FORK if sched.reset_on_fork else 0)


def sys_sched_getparam(t: Task, args: Args) -> int:
    """sched_getparam(2)."""
    pid, addr = s32(args[0]), args[1]
    if not addr or pid < 0:
        raise SyscallError(errno.EINVAL)
    target = _find_task(t, pid)
    prio = target.sched.priority if target.sched.policy in _RT_POLICIES else 0
    t.mm.write_u32(addr, prio)
    return 0


# struct sched_attr: size, policy, flags, nice, priority, runtime, deadline,
# period (SCHED_ATTR_SIZE_VER0), then util_min and util_max (VER1).
_SCHED_ATTR = struct.Struct("<IIQiIQQQII")
SCHED_ATTR_SIZE_VER0 = 48
SCHED_ATTR_SIZE_VER1 = _SCHED_ATTR.size
SCHED_FLAG_RESET_ON_FORK = 0x01
SCHED_FLAG_RECLAIM = 0x02
SCHED_FLAG_DL_OVERRUN = 0x04
SCHED_FLAG_KEEP_POLICY = 0x08
SCHED_FLAG_KEEP_PARAMS = 0x10
SCHED_FLAG_UTIL_CLAMP = 0x20 | 0x40
SCHED_FLAG_ALL = 0x7F
# SCHED_DEADLINE's limits: runtime at least 2^DL_SCALE ns, period within
# kernel.sched_deadline_period_{min,max}_us (defaults).
_DL_MIN_RUNTIME = 1 << 10
_DL_PERIOD_MIN = 100 * 1000
_DL_PERIOD_MAX = (1 << 22) * 1000
# A fair task's custom slice is clamped to 0.1 ms - 100 ms.
_SLICE_MIN = 100_000
_SLICE_MAX = 100_000_000


def _base_slice_ns(t: Task) -> int:
    """sysctl_sched_base_slice: 0.7 ms, scaled by 1 + log2 of the CPUs
    (at most 8) as Linux scales it at boot."""
    return 700_000 * (1 + (min(t.kernel.num_cpus, 8).bit_length() - 1))


def _attr_of(t: Task, target: Task) -> list[int]:
    """Returns target's struct sched_attr fields (get_params)."""
    sched = target.sched
    runtime = deadline = period = 0
    nice = prio = 0
    if sched.policy == SC.SCHED_DEADLINE:
        runtime, deadline, period = sched.dl_runtime, sched.dl_deadline, sched.dl_period
    elif sched.policy in _RT_POLICIES:
        prio = sched.priority
    else:
        nice = sched.nice
        runtime = sched.slice_ns or _base_slice_ns(t)
    flags = SCHED_FLAG_RESET_ON_FORK if sched.reset_on_fork else 0
    size = SCHED_ATTR_SIZE_VER1
    return [size, sched.policy, flags, nice, prio, runtime, deadline, period, 0, 0]


def sys_sched_getattr(t: Task, args: Args) -> int:
    """sched_getattr(2)."""
    pid, addr, size, flags = s32(args[0]), args[1], u32(args[2]), u32(args[3])
    if not addr or pid < 0 or size > PAGE_SIZE or size < SCHED_ATTR_SIZE_VER0 or flags:
        raise SyscallError(errno.EINVAL)
    fields = _attr_of(t, _find_task(t, pid))
    fields[0] = min(size, SCHED_ATTR_SIZE_VER1)
    # copy_struct_to_user: a larger struct than the sentry's gets zeros.
    t.copy_out(addr, _SCHED_ATTR.pack(*fields)[: fields[0]].ljust(size, b"\0"))
    return 0


def _copy_attr_in(t: Task, addr: int) -> list[int]:
    """Reads a struct sched_attr of the size it names (sched_copy_attr).

    Raises:
        SyscallError: E2BIG (after writing the size the sentry knows back)
            for a size out of range or a nonzero tail past what it knows;
            EINVAL for utilisation clamps in a VER0 struct.
    """
    size = t.mm.read_u32(addr)
    size = size or SCHED_ATTR_SIZE_VER0
    if SCHED_ATTR_SIZE_VER0 <= size <= PAGE_SIZE:
        raw = t.copy_in(addr, size)
        if not any(raw[SCHED_ATTR_SIZE_VER1:]):
            raw = raw[:SCHED_ATTR_SIZE_VER1].ljust(SCHED_ATTR_SIZE_VER1, b"\0")
            fields = list(_SCHED_ATTR.unpack(raw))
            if fields[2] & SCHED_FLAG_UTIL_CLAMP and size < SCHED_ATTR_SIZE_VER1:
                raise SyscallError(errno.EINVAL)
            fields[3] = min(max(fields[3], MIN_NICE), MAX_NICE)
            return fields
    t.mm.write_u32(addr, SCHED_ATTR_SIZE_VER1)
    raise SyscallError(errno.E2BIG)


def _check_deadline(runtime: int, deadline: int, period: int) -> bool:
    """__checkparam_dl: runtime <= deadline <= period, within limits."""
    if deadline == 0 or runtime < _DL_MIN_RUNTIME:
        return False
    if deadline >> 63 or period >> 63:
        return False
    period = period or deadline
    if period < deadline or deadline < runtime:
        return False
    return _DL_PERIOD_MIN <= period <= _DL_PERIOD_MAX


def sys_sched_setattr(t: Task, args: Args) -> int:
    """sched_setattr(2)."""
    pid, addr, flags = s32(args[0]), args[1], u32(args[2])
    if not addr or pid < 0 or flags:
        raise SyscallError(errno.EINVAL)
    _, policy, aflags, nice, prio, runtime, deadline, period, _, _ = _copy_attr_in(
        t, addr
    )
    if policy >= 1 << 31:
        raise SyscallError(errno.EINVAL)
    target = _find_task(t, pid)
    sched = target.sched
    keep_policy = bool(aflags & SCHED_FLAG_KEEP_POLICY)
    if aflags & SCHED_FLAG_KEEP_PARAMS:
        _, _, _, nice, prio, runtime, deadline, period, _, _ = _attr_of(t, target)
    if keep_policy:
        policy = sched.policy
        reset = sched.reset_on_fork
    else:
        reset = bool(aflags & SCHED_FLAG_RESET_ON_FORK)
        if policy not in _POLICIES:
            raise SyscallError(errno.EINVAL)
    if aflags & ~SCHED_FLAG_ALL:
        raise SyscallError(errno.EINVAL)
    if prio > MAX_RT_PRIO:
        raise SyscallError(errno.EINVAL)
    if policy == SC.SCHED_DEADLINE and not _check_deadline(runtime, deadline, period):
        raise SyscallError(errno.EINVAL)
    if (policy in _RT_POLICIES) != (prio != 0):
        raise SyscallError(errno.EINVAL)
    if policy == SC.SCHED_DEADLINE:
        # user_check_sched_setscheduler: deadline needs CAP_SYS_NICE.
        if not t.creds.has_capability(CAP_SYS_NICE):
            raise SyscallError(errno.EPERM)
    else:
        _check_setscheduler(t, target, policy, prio, reset)
    fair = policy not in _RT_POLICIES and policy != SC.SCHED_DEADLINE
    if fair and nice < sched.nice and not t.creds.has_capability(CAP_SYS_NICE):
        if 20 - nice > target.tg.limits.soft(L.RLIMIT_NICE):
            raise SyscallError(errno.EPERM)
    if aflags & SCHED_FLAG_UTIL_CLAMP:
        # A kernel without CONFIG_UCLAMP_TASK, as the host's.
        raise SyscallError(errno.EOPNOTSUPP)
    # TODO(#4): no deadline admission control (EBUSY when the CPUs'
    # bandwidth is spent); nothing is scheduled by these parameters.
    sched.policy = policy
    sched.priority = prio
    sched.reset_on_fork = reset
    if policy == SC.SCHED_DEADLINE:
        sched.dl_runtime, sched.dl_deadline = runtime, deadline
        sched.dl_period = period or deadline
    elif fair:
        sched.nice = nice
        sched.slice_ns = min(max(runtime, _SLICE_MIN), _SLICE_MAX) if runtime else 0
    return 0


def sys_sched_get_priority_max(t: Task, args: Args) -> int:
    """sched_get_priority_max(2)."""
    policy = s32(args[0])
    if policy in _RT_POLICIES:
        return MAX_RT_PRIO
    if policy in _POLICIES:
        return 0
    raise SyscallError(errno.EINVAL)


def sys_sched_get_priority_min(t: Task, args: Args) -> int:
    """sched_get_priority_min(2)."""
    policy = s32(args[0])
    if policy in _RT_POLICIES:
        return 1
    if policy in _POLICIES:
        return 0
    raise SyscallError(errno.EINVAL)


def sys_sched_rr_get_interval(t: Task, args: Args) -> int:
    """sched_rr_get_interval(2)."""
    pid, addr = s32(args[0]), args[1]
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    policy = _find_task(t, pid).sched.policy
    if policy == SC.SCHED_RR:
        ns = _RR_TIMESLICE_NS
    elif policy == SC.SCHED_FIFO:
        ns = 0
    else:
        ns = _FAIR_SLICE_NS
    t.copy_out(addr, _TIMESPEC.pack(*divmod(ns, 1_000_000_000)))
    return 0


def prio_targets(t: Task, which: int, who: int) -> list[Task]:
    """Returns the threads getpriority/setpriority (and ioprio_get/set)
    address: a thread, a process group or a user's, none if there are
    none.

    Raises:
        SyscallError: EINVAL for an unknown which.
    """
    ts = t.kernel.tasks
    if which == PRIO_PROCESS:
        if who == 0:
            return [t]
        found = ts.find_task(who)
        return [found] if found is not None else []
    if which == PRIO_PGRP:
        pgid = who or t.tg.pgid
        with ts.mu:
            pg = ts.process_groups.get(pgid)
            if pg is None:
                return []
            return [x for tg in pg.members for x in tg.tasks]
    if which == PRIO_USER:
        uid = who if who else t.creds.ruid
        return [x for x in ts.live_tasks() if x.creds.ruid == uid]
    raise SyscallError(errno.EINVAL)


def sys_getpriority(t: Task, args: Args) -> int:
    """getpriority(2): the raw call returns 20 - nice (1 to 40), the
    highest among the threads addressed."""
    targets = prio_targets(t, s32(args[0]), u32(args[1]))
    if not targets:
        raise SyscallError(errno.ESRCH)
    return max(20 - x.sched.nice for x in targets)


def sys_setpriority(t: Task, args: Args) -> int:
    """setpriority(2)."""
    which, who, nice = s32(args[0]), u32(args[1]), s32(args[2])
    if not PRIO_PROCESS <= which <= PRIO_USER:
        raise SyscallError(errno.EINVAL)
    nice = min(max(nice, MIN_NICE), MAX_NICE)
    targets = prio_targets(t, which, who)
    err = errno.ESRCH
    c = t.creds
    capable = c.has_capability(CAP_SYS_NICE)
    for x in targets:
        xc = x.creds
        if c.euid not in (xc.ruid, xc.euid) and not capable:
            err = errno.EPERM
            continue
        if nice < x.sched.nice and not capable:
            if 20 - nice > x.tg.limits.soft(L.RLIMIT_NICE):
                err = errno.EACCES
                continue
        if xc.permitted & ~c.permitted and not capable:
            err = errno.EPERM
            continue
        if err == errno.ESRCH:
            err = 0
        x.sched.nice = nice
    if err:
        raise SyscallError(err)
    return 0


ENTRIES = [
    full(N.SYS_sched_yield, "sched_yield", sys_sched_yield),
    full(N.SYS_getpriority, "getpriority", sys_getpriority),
    full(N.SYS_setpriority, "setpriority", sys_setpriority),
    partial(
        N.SYS_sched_setparam,
        "sched_setparam",
        sys_sched_setparam,
        "recorded, not applied to host threads",
    ),
    full(N.SYS_sched_getparam, "sched_getparam", sys_sched_getparam),
    partial(
        N.SYS_sched_setscheduler,
        "sched_setscheduler",
        sys_sched_setscheduler,
        "recorded, not applied to host threads; SCHED_DEADLINE fails with "
        "EINVAL as without sched_setattr parameters",
    ),
    full(N.SYS_sched_getscheduler, "sched_getscheduler", sys_sched_getscheduler),
    full(
        N.SYS_sched_get_priority_max,
        "sched_get_priority_max",
        sys_sched_get_priority_max,
    ),
    full(
        N.SYS_sched_get_priority_min,
        "sched_get_priority_min",
        sys_sched_get_priority_min,
    ),
    partial(
        N.SYS_sched_rr_get_interval,
        "sched_rr_get_interval",
        sys_sched_rr_get_interval,
        "fixed quanta: 100 ms for SCHED_RR, 4 ms for fair policies",
    ),
    full(N.SYS_sched_getattr, "sched_getattr", sys_sched_getattr),
    partial(
        N.SYS_sched_setattr,
        "sched_setattr",
        sys_sched_setattr,
        "recorded, not applied to host threads; no deadline admission "
        "control; utilisation clamps EOPNOTSUPP as without CONFIG_UCLAMP_TASK",
    ),
    partial(
        N.SYS_sched_setaffinity,
        "sched_setaffinity",
        sys_sched_setaffinity,
        "recorded and reported (getcpu honours it), not applied to host threads",
    ),
    full(N.SYS_sched_getaffinity, "sched_getaffinity", sys_sched_getaffinity),
    full(N.SYS_getcpu, "getcpu", sys_getcpu),
]
