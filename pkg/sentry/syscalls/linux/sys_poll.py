"""poll(2), ppoll(2), select(2) and pselect6(2) (fs/select.c).

All four wait for readiness the same way (wait_ready): resolve the
descriptors once, register a waiter entry that wakes the task on every file,
then loop checking readiness until something is ready, the timeout passes,
or a signal interrupts. Files whose readiness is the host's (host_poll_fd)
are waited on through Task.block's host descriptors, so a task polling
standard input and an eventfd wakes for either without spinning.

A signal ends the wait with ERESTARTNOHAND (poll: ERESTART_RESTARTBLOCK):
a handler turns it into EINTR and no handler restarts the call. ppoll and
pselect6 install a temporary signal mask first (set_user_sigmask); if the
call is interrupted, the old mask stays saved in Task.saved_mask so that
the handler runs with the temporary mask and the old one returns with it,
as Linux's restore_saved_sigmask_unless does. The time left is written back to the
timeout of select, pselect6 and ppoll, as Linux does.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import poll as P
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.abi.linux import time as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.task_signals import recalc_interrupted_locked
from pkg.sentry.kernel.waiter import Entry
from pkg.sentry.syscalls.syscall import Args, partial, s32, s64, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.file_description import FileDescription

_POLLFD = struct.Struct("<ihh")
_TIMESPEC = struct.Struct("<qq")
_TIMEVAL = struct.Struct("<qq")
_SIGSET_ARGPACK = struct.Struct("<QQ")
_MASK64 = (1 << 64) - 1
# Events of a host poll, which takes 16 bits.
_HOST_EVENTS = 0xFFFF
# The longest single host wait; longer timeouts wait in steps, so that a
# huge timeout never overflows the host poll's millisecond count.
_MAX_BLOCK_SECONDS = 3600.0


# Timeouts.


def deadline_after_ns(ns: int) -> float:
    """Returns the time.monotonic() deadline ns nanoseconds from now."""
    return time.monotonic() + ns / T.NSEC_PER_SEC


def read_timeout(t: Task, addr: int) -> tuple[float | None, bool]:
    """Reads a struct timespec timeout as poll_select_set_timeout does.

    Returns:
        (deadline, zero): the monotonic deadline (None for a null pointer,
        meaning forever) and whether the timeout is zero (do not block).

    Raises:
        SyscallError: EFAULT, or EINVAL for a negative or unnormalised
            timespec.
    """
    if not addr:
        return None, False
    sec, nsec = _TIMESPEC.unpack(t.copy_in(addr, _TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < T.NSEC_PER_SEC:
        raise SyscallError(errno.EINVAL)
    if sec == 0 and nsec == 0:
        return time.monotonic(), True
    return deadline_after_ns(sec * T.NSEC_PER_SEC + nsec), False


def block_until(
    t: Task, deadline: float | None, host_fds: tuple[tuple[int, int], ...] = ()
) -> bool:
    """Blocks until woken, a host event or the deadline.

    Returns:
        True if the deadline has passed.

    Raises:
        SyscallError: ERESTARTSYS if the task was interrupted.
    """
    if deadline is None:
        t.block(None, host_fds)
        return False
    now = time.monotonic()
    if now >= deadline:
        return True
    try:
        t.block(min(deadline, now + _MAX_BLOCK_SECONDS), host_fds)
    except SyscallError as e:
        if e.errno != errno.ETIMEDOUT:
            raise
        return time.monotonic() >= deadline
    return False


def _write_remaining(t: Task, addr: int, deadline: float, timeval: bool) -> bool:
    """Writes the time left before deadline (poll_select_finish); returns
    False if the memory cannot be written."""
    left = max(0, int((deadline - time.monotonic()) * T.NSEC_PER_SEC))
    sec, nsec = divmod(left, T.NSEC_PER_SEC)
    if timeval:
        data = _TIMEVAL.pack(sec, nsec // T.NSEC_PER_USEC)
    else:
        data = _TIMESPEC.pack(sec, nsec)
    try:
        t.copy_out(addr, data)
    except SyscallError:
        return False
    return True


def finish_timeout(
    t: Task, addr: int, deadline: float | None, zero: bool, timeval: bool, ret: int
) -> int:
    """Writes the time left back for select, pselect6 and ppoll, and makes
    an interrupted call that cannot report it not restartable."""
    if not addr or deadline is None or zero:
        return ret
    if _write_remaining(t, addr, deadline, timeval):
        return ret
    # The application's timeout is not updated, so a restart would wait
    # too long: fail with EINTR instead (the "sticky" case).
    if ret == -errno.ERESTARTNOHAND:
        return -errno.EINTR
    return ret


# The temporary signal mask.


def set_user_sigmask(t: Task, addr: int, size: int) -> None:
    """Installs the temporary signal mask of ppoll, pselect6 and
    epoll_pwait, saving the current one in t.saved_mask.

    Raises:
        SyscallError: EINVAL if size is not sizeof(sigset_t), EFAULT.
    """
    if not addr:
        return
    if size != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    mask = t.mm.read_u64(addr)
    with t.tg.signal_handlers.mu:
        t.saved_mask = t.signal_mask
        t.signal_mask = mask & ~S.UNBLOCKABLE_MASK
        recalc_interrupted_locked(t)


def restore_saved_sigmask_unless(t: Task, interrupted: bool) -> None:
    """Puts back the mask set_user_sigmask saved, unless the call was
    interrupted: then signal delivery restores it after the handler's frame
    has recorded it."""
    if t.saved_mask is None or interrupted:
        return
    with t.tg.signal_handlers.mu:
        if t.saved_mask is not None:
            t.signal_mask = t.saved_mask
            t.saved_mask = None
            recalc_interrupted_locked(t)


# Waiting for readiness.


class _Watch:
    """_Watch is the files of one poll-like call and the task's waiter
    entries on them."""

    __slots__ = ("entries", "files", "host_fds")

    def __init__(self) -> None:
        self.files: dict[int, FileDescription | None] = {}
        self.entries: list[tuple[FileDescription, Entry]] = []
        self.host_fds: tuple[tuple[int, int], ...] = ()

    def resolve(self, t: Task, fds: list[int]) -> None:
        """Looks every descriptor up once, holding a reference on each file
        for the duration of the call."""
        table = t.fd_table
        for fd in fds:
            if fd in self.files:
                continue
            try:
                f = table.get(fd)
            except SyscallError:
                self.files[fd] = None
                continue
            f.inc_ref()
            self.files[fd] = f

    def register(self, t: Task, masks: dict[int, int]) -> None:
        """Asks every file to wake t for the events in masks[fd]."""
        by_file: dict[int, tuple[FileDescription, int]] = {}
        host: dict[int, int] = {}
        for fd, mask in masks.items():
            f = self.files.get(fd)
            if f is None:
                continue
            prev = by_file.get(id(f))
            by_file[id(f)] = (f, mask | (prev[1] if prev else 0))
        for f, mask in by_file.values():
            entry = Entry(lambda _m: t.wake(), mask)
            f.event_register(entry)
            self.entries.append((f, entry))
            host_fd = f.host_poll_fd()
            if host_fd >= 0:
                host[host_fd] = host.get(host_fd, 0) | (mask & _HOST_EVENTS)
        self.host_fds = tuple(host.items())

    def release(self) -> None:
        """Unregisters the entries and drops the file references."""
        for f, entry in self.entries:
            f.event_unregister(entry)
        self.entries.clear()
        for f in self.files.values():
            if f is not None:
                f.dec_ref()
        self.files.clear()


def wait_ready(
    t: Task,
    fds: list[int],
    masks: dict[int, int],
    deadline: float | None,
    zero: bool,
) -> dict[int, int] | None:
    """Waits until some descriptor is ready (do_poll, do_select).

    Args:
        t: the calling task.
        fds: the descriptors, -1 and closed ones included.
        masks: the events wanted per open descriptor (with POLLERR|POLLHUP).
        deadline: monotonic deadline, None for no timeout.
        zero: the timeout is zero: look once, never block.

    Returns:
        The ready events per descriptor (POLLNVAL for closed ones), or None
        if a signal interrupted the wait first.
    """
    watch = _Watch()
    try:
        watch.resolve(t, [fd for fd in fds if fd >= 0])
        timed_out = zero
        registered = False
        while True:
            ready: dict[int, int] = {}
            for fd, mask in masks.items():
                f = watch.files.get(fd)
                if f is None:
                    ready[fd] = P.POLLNVAL
                    continue
                events = f.readiness(mask) & mask
                if events:
                    ready[fd] = events
            if ready:
                return ready
            if t.interrupted:
                return None
            if timed_out:
                return ready
            if not registered:
                # Register, then look again before sleeping, so that an
                # event between the first look and the sleep is not lost.
                watch.register(t, masks)
                registered = True
                continue
            try:
                timed_out = block_until(t, deadline, watch.host_fds)
            except SyscallError as e:
                if e.errno != errno.ERESTARTSYS:
                    raise
    finally:
        watch.release()


# poll and ppoll.


def _do_sys_poll(
    t: Task, addr: int, nfds: int, deadline: float | None, zero: bool
) -> int:
    """do_sys_poll: returns the count of ready entries, or raises
    ERESTARTNOHAND when interrupted (after writing revents back)."""
    if nfds > t.tg.limits.soft(L.RLIMIT_NOFILE):
        raise SyscallError(errno.EINVAL)
    raw = bytearray(t.copy_in(addr, nfds * _POLLFD.size)) if nfds else bytearray()
    entries = [_POLLFD.unpack_from(raw, i * _POLLFD.size) for i in range(nfds)]
    fds = [fd for fd, _events, _revents in entries]
    masks: dict[int, int] = {}
    for fd, events, _revents in entries:
        if fd >= 0:
            masks[fd] = masks.get(fd, 0) | (events & 0xFFFF) | P.POLLERR | P.POLLHUP
    ready = wait_ready(t, fds, masks, deadline, zero)
    count = 0
    for i, (fd, events, _revents) in enumerate(entries):
        revents = 0
        if fd >= 0 and ready:
            got = ready.get(fd, 0)
            revents = (
                got
                if got == P.POLLNVAL
                else got & ((events & 0xFFFF) | P.POLLERR | P.POLLHUP)
            )
        if revents:
            count += 1
        struct.pack_into("<h", raw, i * _POLLFD.size + 6, _s16(revents))
    if nfds:
        t.copy_out(addr, bytes(raw))
    if ready is None:
        raise SyscallError(errno.ERESTARTNOHAND)
    return count


def _s16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


def sys_poll(t: Task, args: Args) -> int:
    """poll(2): interrupted, it restarts through restart_syscall with the
    time left when no handler runs (do_restart_poll)."""
    addr, nfds, timeout_ms = args[0], u32(args[1]), s32(args[2])
    if timeout_ms < 0:
        deadline, zero = None, False
    elif timeout_ms == 0:
        deadline, zero = time.monotonic(), True
    else:
        deadline, zero = deadline_after_ns(timeout_ms * 1_000_000), False
    return _restartable_poll(t, addr, nfds, deadline, zero)


def _restartable_poll(
    t: Task, addr: int, nfds: int, deadline: float | None, zero: bool
) -> int:
    try:
        return _do_sys_poll(t, addr, nfds, deadline, zero)
    except SyscallError as e:
        if e.errno != errno.ERESTARTNOHAND:
            raise
    # The deadline is absolute, so the restarted call waits what is left.
    t.restart_block = lambda t: _restartable_poll(t, addr, nfds, deadline, zero)
    raise SyscallError(errno.ERESTART_RESTARTBLOCK)


def sys_ppoll(t: Task, args: Args) -> int:
    """ppoll(2): the raw call, which writes the time left back."""
    addr, nfds, ts_addr, mask_addr, mask_size = (
        args[0],
        u32(args[1]),
        args[2],
        args[3],
        args[4],
    )
    deadline, zero = read_timeout(t, ts_addr)
    set_user_sigmask(t, mask_addr, mask_size)
    try:
        ret = _do_sys_poll(t, addr, nfds, deadline, zero)
    except SyscallError as e:
        ret = -e.errno
    restore_saved_sigmask_unless(t, ret == -errno.ERESTARTNOHAND)
    ret = finish_timeout(t, ts_addr, deadline, zero, False, ret)
    if ret < 0:
        raise SyscallError(-ret)
    return ret


# select and pselect6.


def _fds_bytes(n: int) -> int:
    return (n + P.NFDBITS - 1) // P.NFDBITS * 8


def _max_fds(t: Task) -> int:
    """The size of the descriptor table as Linux would have grown it
    (expand_fdtable): 64 slots, then 128 times a power of two."""
    fds = t.fd_table.fds()
    highest = fds[-1] if fds else -1
    if highest < P.NR_OPEN_DEFAULT:
        return P.NR_OPEN_DEFAULT
    groups = highest // 128 + 1
    return 128 * (1 << (groups - 1).bit_length())


def _read_set(t: Task, addr: int, n: int) -> int:
    if not addr or n == 0:
        return 0
    return int.from_bytes(t.copy_in(addr, _fds_bytes(n)), "little") & ((1 << n) - 1)


def _core_sys_select(
    t: Task,
    n: int,
    addrs: tuple[int, int, int],
    deadline: float | None,
    zero: bool,
) -> int:
    """core_sys_select: returns the number of set bits written back, or
    raises ERESTARTNOHAND when interrupted (leaving the sets alone)."""
    if n < 0:
        raise SyscallError(errno.EINVAL)
    n = min(n, _max_fds(t))
    sets = [_read_set(t, a, n) for a in addrs]
    wanted = sets[0] | sets[1] | sets[2]
    fds = []
    masks: dict[int, int] = {}
    table = t.fd_table
    while wanted:
        low = wanted & -wanted
        fd = low.bit_length() - 1
        wanted ^= low
        table.get(fd)  # EBADF for a closed descriptor in any set.
        mask = 0
        if sets[0] & low:
            mask |= P.POLLIN_SET
        if sets[1] & low:
            mask |= P.POLLOUT_SET
        if sets[2] & low:
            mask |= P.POLLEX_SET
        fds.append(fd)
        masks[fd] = mask
    ready = wait_ready(t, fds, masks, deadline, zero)
    if ready is None:
        raise SyscallError(errno.ERESTARTNOHAND)
    results = [0, 0, 0]
    count = 0
    for fd, events in ready.items():
        bit = 1 << fd
        for i, interest in enumerate((P.POLLIN_SET, P.POLLOUT_SET, P.POLLEX_SET)):
            if sets[i] & bit and events & interest:
                results[i] |= bit
                count += 1
    for addr, res in zip(addrs, results, strict=True):
        if addr and n:
            t.copy_out(addr, res.to_bytes(_fds_bytes(n), "little"))
    return count


def sys_select(t: Task, args: Args) -> int:
    """select(2): the raw call, which writes the time left back."""
    n, tv_addr = s32(args[0]), args[4]
    deadline, zero = None, False
    if tv_addr:
        sec, usec = _TIMEVAL.unpack(t.copy_in(tv_addr, _TIMEVAL.size))
        # C division truncates toward zero.
        carry = abs(usec) // 1_000_000 * (1 if usec >= 0 else -1)
        rem = usec - carry * 1_000_000
        sec = s64((sec + carry) & _MASK64)
        nsec = rem * T.NSEC_PER_USEC
        if sec < 0 or not 0 <= nsec < T.NSEC_PER_SEC:
            raise SyscallError(errno.EINVAL)
        if sec == 0 and nsec == 0:
            deadline, zero = time.monotonic(), True
        else:
            deadline = deadline_after_ns(sec * T.NSEC_PER_SEC + nsec)
    try:
        ret = _core_sys_select(t, n, (args[1], args[2], args[3]), deadline, zero)
    except SyscallError as e:
        ret = -e.errno
    ret = finish_timeout(t, tv_addr, deadline, zero, True, ret)
    if ret < 0:
        raise SyscallError(-ret)
    return ret


def sys_pselect6(t: Task, args: Args) -> int:
    """pselect6(2): select with a timespec and a temporary signal mask,
    passed as a pointer to {const sigset_t *, size_t}."""
    n, ts_addr, sig_addr = s32(args[0]), args[4], args[5]
    mask_addr = mask_size = 0
    if sig_addr:
        mask_addr, mask_size = _SIGSET_ARGPACK.unpack(
            t.copy_in(sig_addr, _SIGSET_ARGPACK.size)
        )
    deadline, zero = read_timeout(t, ts_addr)
    set_user_sigmask(t, mask_addr, mask_size)
    try:
        ret = _core_sys_select(t, n, (args[1], args[2], args[3]), deadline, zero)
    except SyscallError as e:
        ret = -e.errno
    restore_saved_sigmask_unless(t, ret == -errno.ERESTARTNOHAND)
    ret = finish_timeout(t, ts_addr, deadline, zero, False, ret)
    if ret < 0:
        raise SyscallError(-ret)
    return ret


ENTRIES = [
    partial(
        N.SYS_poll,
        "poll",
        sys_poll,
        "a descriptor closed by another thread during the call is still polled",
    ),
    partial(
        N.SYS_select,
        "select",
        sys_select,
        "a descriptor closed by another thread during the call is still "
        "polled; STICKY_TIMEOUTS is not supported",
    ),
    partial(
        N.SYS_pselect6,
        "pselect6",
        sys_pselect6,
        "a descriptor closed by another thread during the call is still polled",
    ),
    partial(
        N.SYS_ppoll,
        "ppoll",
        sys_ppoll,
        "a descriptor closed by another thread during the call is still polled",
    ),
]
