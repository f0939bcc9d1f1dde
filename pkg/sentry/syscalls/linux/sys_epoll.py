"""epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2),
epoll_pwait(2) and epoll_pwait2(2) (fs/eventpoll.c). The instance itself is
pkg/sentry/fsimpl/epoll."""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import epoll as EP
from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.epoll.epoll import EpollInstance, new_epoll
from pkg.sentry.kernel.waiter import EVENT_IN, Entry
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.linux.sys_poll import (
    block_until,
    deadline_after_ns,
    read_timeout,
    restore_saved_sigmask_unless,
    set_user_sigmask,
)
from pkg.sentry.syscalls.syscall import Args, full, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_EPOLL_EVENT = struct.Struct("<IQ")


def _create(t: Task, cloexec: bool) -> int:
    ep = new_epoll()
    try:
        return t.fd_table.new_fd(ep, cloexec, 0, fd_limit(t))
    except SyscallError:
        ep.dec_ref()
        raise


def sys_epoll_create(t: Task, args: Args) -> int:
    """epoll_create(2): the size hint must be positive and is unused."""
    if s32(args[0]) <= 0:
        raise SyscallError(errno.EINVAL)
    return _create(t, False)


def sys_epoll_create1(t: Task, args: Args) -> int:
    """epoll_create1(2)."""
    flags = s32(args[0])
    if flags & ~EP.EPOLL_CLOEXEC:
        raise SyscallError(errno.EINVAL)
    return _create(t, bool(flags & EP.EPOLL_CLOEXEC))


def sys_epoll_ctl(t: Task, args: Args) -> int:
    """epoll_ctl(2)."""
    epfd, op, fd, event_addr = s32(args[0]), s32(args[1]), s32(args[2]), args[3]
    events = data = 0
    has_event = op != EP.EPOLL_CTL_DEL
    if has_event:
        events, data = _EPOLL_EVENT.unpack(t.copy_in(event_addr, _EPOLL_EVENT.size))
    table = t.fd_table
    ep_file = table.get(epfd)
    target = table.get(fd)
    # Hold both files for the call, as fdget does.
    ep_file.inc_ref()
    target.inc_ref()
    try:
        if not target.epollable():
            raise SyscallError(errno.EPERM)
        # EPOLLWAKEUP needs CAP_BLOCK_SUSPEND and means nothing here: it is
        # dropped, as ep_take_care_of_epollwakeup does without the
        # capability.
        events &= ~EP.EPOLLWAKEUP
        if ep_file is target or not isinstance(ep_file, EpollInstance):
            raise SyscallError(errno.EINVAL)
        if has_event and events & EP.EPOLLEXCLUSIVE:
            if op == EP.EPOLL_CTL_MOD:
                raise SyscallError(errno.EINVAL)
            if op == EP.EPOLL_CTL_ADD and (
                isinstance(target, EpollInstance) or events & ~EP.EPOLLEXCLUSIVE_OK_BITS
            ):
                raise SyscallError(errno.EINVAL)
        if op == EP.EPOLL_CTL_ADD:
            ep_file.add(target, fd, events, data)
        elif op == EP.EPOLL_CTL_DEL:
            ep_file.delete(target, fd)
        elif op == EP.EPOLL_CTL_MOD:
            ep_file.modify(target, fd, events, data)
        else:
            raise SyscallError(errno.EINVAL)
    finally:
        target.dec_ref()
        ep_file.dec_ref()
    return 0


def _do_epoll_wait(
    t: Task,
    epfd: int,
    events_addr: int,
    maxevents: int,
    deadline: float | None,
    zero: bool,
) -> int:
    """do_epoll_wait and ep_poll."""
    ep = t.fd_table.get(epfd)
    if maxevents <= 0 or maxevents > EP.EP_MAX_EVENTS:
        raise SyscallError(errno.EINVAL)
    end = events_addr + maxevents * EP.EPOLL_EVENT_SIZE
    if end > t.mm.max_address:
        raise SyscallError(errno.EFAULT)
    if not isinstance(ep, EpollInstance):
        raise SyscallError(errno.EINVAL)

    def deliver(found: list[tuple[int, int]]) -> int:
        buf = b"".join(_EPOLL_EVENT.pack(ev, data) for ev, data in found)
        placed = t.mm.copy_out_partial(events_addr, buf) // EP.EPOLL_EVENT_SIZE
        if placed == 0:
            raise SyscallError(errno.EFAULT)
        return placed

    ep.inc_ref()
    entry = Entry(lambda _mask: t.wake(), EVENT_IN)
    ep.event_register(entry)
    try:
        timed_out = zero
        while True:
            n = ep.collect(maxevents, deliver)
            if n:
                return n
            if timed_out:
                return 0
            if t.interrupted:
                raise SyscallError(errno.EINTR)
            try:
                timed_out = block_until(t, deadline, ep.host_wait_fds())
            except SyscallError as e:
                if e.errno != errno.ERESTARTSYS:
                    raise
    finally:
        ep.event_unregister(entry)
        ep.dec_ref()


def _ms_timeout(timeout_ms: int) -> tuple[float | None, bool]:
    if timeout_ms < 0:
        return None, False
    if timeout_ms == 0:
        return time.monotonic(), True
    return deadline_after_ns(timeout_ms * 1_000_000), False


def sys_epoll_wait(t: Task, args: Args) -> int:
    """epoll_wait(2): never restarted; a signal makes it fail with EINTR."""
    deadline, zero = _ms_timeout(s32(args[3]))
    return _do_epoll_wait(t, s32(args[0]), args[1], s32(args[2]), deadline, zero)


def _do_epoll_pwait(
    t: Task,
    args: Args,
    deadline: float | None,
    zero: bool,
) -> int:
    set_user_sigmask(t, args[4], args[5])
    try:
        ret = _do_epoll_wait(t, s32(args[0]), args[1], s32(args[2]), deadline, zero)
    except SyscallError as e:
        restore_saved_sigmask_unless(t, e.errno == errno.EINTR)
        raise
    restore_saved_sigmask_unless(t, False)
    return ret


def sys_epoll_pwait(t: Task, args: Args) -> int:
    """epoll_pwait(2)."""
    deadline, zero = _ms_timeout(s32(args[3]))
    return _do_epoll_pwait(t, args, deadline, zero)


def sys_epoll_pwait2(t: Task, args: Args) -> int:
    """epoll_pwait2(2): the timeout is a struct timespec, null for none."""
    deadline, zero = read_timeout(t, args[3])
    return _do_epoll_pwait(t, args, deadline, zero)


ENTRIES = [
    full(N.SYS_epoll_create, "epoll_create", sys_epoll_create),
    full(N.SYS_epoll_create1, "epoll_create1", sys_epoll_create1),
    partial(
        N.SYS_epoll_ctl,
        "epoll_ctl",
        sys_epoll_ctl,
        "EPOLLEXCLUSIVE is accepted but every waiter is woken; EPOLLWAKEUP "
        "is ignored; no max_user_watches limit",
    ),
    full(N.SYS_epoll_wait, "epoll_wait", sys_epoll_wait),
    full(N.SYS_epoll_pwait, "epoll_pwait", sys_epoll_pwait),
    full(N.SYS_epoll_pwait2, "epoll_pwait2", sys_epoll_pwait2),
]
