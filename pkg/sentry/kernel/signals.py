"""Signal state: actions, pending queues and siginfo.

SignalHandlers is shared by threads (and by CLONE_SIGHAND children); each
Task has its own PendingSignals and mask; each ThreadGroup has a group-wide
PendingSignals. Standard signals coalesce while pending; real-time signals
queue, as in kernel/signal.c.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Protocol

from pkg.abi.linux import signal as S
from pkg.sentry.kernel.waiter import Queue


@dataclass(slots=True)
class SigAction:
    """SigAction is struct sigaction (kernel layout: handler, flags, restorer,
    mask)."""

    handler: int = S.SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0

    _STRUCT = struct.Struct("<QQQQ")

    def pack(self) -> bytes:
        """Returns the 32-byte kernel struct sigaction."""
        return self._STRUCT.pack(self.handler, self.flags, self.restorer, self.mask)

    @classmethod
    def unpack(cls, data: bytes) -> SigAction:
        """Decodes a kernel struct sigaction."""
        handler, flags, restorer, mask = cls._STRUCT.unpack(data)
        return cls(handler, flags & 0xFFFFFFFF, restorer, mask)


class SignalHandlers:
    """SignalHandlers is the table of actions (struct sighand_struct)."""

    __slots__ = ("actions", "mu", "signalfd_queue")

    def __init__(self) -> None:
        # mu also guards every PendingSignals and mask of the tasks sharing
        # this table, as Linux's siglock does.
        self.mu = threading.RLock()
        self.actions = [SigAction() for _ in range(S.NSIG + 1)]
        # Notified (under mu) whenever a signal is queued for a task sharing
        # this table, for signalfds (sighand->signalfd_wqh).
        self.signalfd_queue = Queue()

    def copy(self) -> SignalHandlers:
        """Returns a copy for fork (actions are inherited)."""
        new = SignalHandlers()
        with self.mu:
            for i, a in enumerate(self.actions):
                new.actions[i] = SigAction(a.handler, a.flags, a.restorer, a.mask)
        return new

    def reset_for_exec(self) -> None:
        """Resets handled signals to SIG_DFL, keeping ignored ones, as execve
        does (flush_signal_handlers)."""
        with self.mu:
            for a in self.actions:
                if a.handler != S.SIG_IGN:
                    a.handler = S.SIG_DFL
                a.flags = 0
                a.restorer = 0
                a.mask = 0

    def is_ignored(self, signo: int) -> bool:
        """Reports whether delivering signo would do nothing."""
        handler = self.actions[signo].handler
        if handler == S.SIG_IGN:
            return True
        return handler == S.SIG_DFL and S.default_action(signo) == S.ACTION_IGNORE


# siginfo_t: signo, errno, code, then a union at offset 16.
_SIGINFO_HEAD = struct.Struct("<iii4x")
_KILL = struct.Struct("<ii")  # pid, uid
_CHLD = struct.Struct("<iiiqq")  # pid, uid, status, utime, stime
_FAULT = struct.Struct("<Q")  # addr
_RT = struct.Struct("<iiQ")  # pid, uid, value
_TIMER = struct.Struct("<iiQ")  # tid, overrun, value
_POLL = struct.Struct("<qi")  # band, fd
_SYS = struct.Struct("<QiI")  # call_addr, syscall, arch


class SignalSource(Protocol):
    """SignalSource is what sent a queued signal and wants to know when it
    is dequeued or discarded (a POSIX timer)."""

    def on_dequeue(self, info: SignalInfo) -> None:
        """Runs when info leaves a queue for delivery, signal lock held."""

    def on_discard(self, info: SignalInfo) -> None:
        """Runs when info is dropped from a queue, signal lock held."""


@dataclass(slots=True)
class SignalInfo:
    """SignalInfo is a siginfo_t. Which fields matter depends on signo and
    code, as in the union of include/uapi/asm-generic/siginfo.h."""

    signo: int
    code: int = S.SI_USER
    errno: int = 0
    pid: int = 0
    uid: int = 0
    status: int = 0
    addr: int = 0
    value: int = 0
    # For CLD_*: user and system time in clock ticks.
    utime: int = 0
    stime: int = 0
    # For SIGIO/POLL: band and fd; for timers: timer id and overrun.
    band: int = 0
    fd: int = 0
    timer_id: int = 0
    overrun: int = 0
    # For SIGSYS from seccomp.
    syscall: int = 0
    arch: int = 0
    # Raw bytes from the host for kernel-generated signals, or from the
    # application for rt_sigqueueinfo, kept verbatim.
    raw: bytes | None = None
    # The POSIX timer that sent this signal (SI_TIMER): it is told when the
    # signal leaves a queue, to count overruns and rearm (see timers.py).
    timer: SignalSource | None = None
    # The RLIMIT_SIGPENDING account this queued signal is charged to, and
    # the user charged; released when it leaves the queue.
    account: SigpendingAccount | None = None
    account_uid: int = 0

    def pack(self) -> bytes:
        """Returns the 128-byte siginfo_t."""
        if self.raw is not None:
            return self.raw
        head = _SIGINFO_HEAD.pack(self.signo, self.errno, self.code)
        signo, code = self.signo, self.code
        if code in (S.SI_USER, S.SI_TKILL) or (
            code == S.SI_KERNEL and signo != S.SIGSEGV
        ):
            body = _KILL.pack(self.pid, self.uid)
        elif code == S.SI_TIMER:
            body = _TIMER.pack(self.timer_id, self.overrun, self.value)
        elif code in (S.SI_QUEUE, S.SI_MESGQ, S.SI_ASYNCIO) or code < 0:
            body = _RT.pack(self.pid, self.uid, self.value)
        elif signo == S.SIGCHLD:
            body = _CHLD.pack(self.pid, self.uid, self.status, self.utime, self.stime)
        elif signo in (S.SIGSEGV, S.SIGBUS, S.SIGILL, S.SIGFPE, S.SIGTRAP):
            body = _FAULT.pack(self.addr)
        elif signo == S.SIGSYS:
            body = _SYS.pack(self.addr, self.syscall, self.arch)
        elif signo == S.SIGIO:
            body = _POLL.pack(self.band, self.fd)
        else:
            body = _KILL.pack(self.pid, self.uid)
        out = head + body
        return out + bytes(S.SIGINFO_SIZE - len(out))

    @classmethod
    def from_host(cls, raw: bytes) -> SignalInfo:
        """Wraps a siginfo_t the host kernel produced (faults, traps)."""
        signo, err, code = _SIGINFO_HEAD.unpack_from(raw, 0)
        (addr,) = _FAULT.unpack_from(raw, 16)
        return cls(signo=signo, code=code, errno=err, addr=addr, raw=bytes(raw))


class SigpendingAccount:
    """SigpendingAccount counts the signals queued for each user, the
    quantity RLIMIT_SIGPENDING limits (ucounts' UCOUNT_RLIMIT_SIGPENDING).

    Its lock is innermost: taken under signal locks, it takes none.
    """

    __slots__ = ("_counts", "_mu")

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._counts: dict[int, int] = {}

    def charge(self, info: SignalInfo, uid: int, limit: int, force: bool) -> bool:
        """Charges info to uid unless that would pass limit (and not force).

        Returns:
            Whether info was charged.
        """
        with self._mu:
            n = self._counts.get(uid, 0) + 1
            if n > limit and not force:
                return False
            self._counts[uid] = n
        info.account = self
        info.account_uid = uid
        return True

    def release(self, info: SignalInfo) -> None:
        """Returns info's charge, once."""
        if info.account is not self:
            return
        info.account = None
        with self._mu:
            n = self._counts.get(info.account_uid, 0) - 1
            if n > 0:
                self._counts[info.account_uid] = n
            else:
                self._counts.pop(info.account_uid, None)

    def count(self, uid: int) -> int:
        """Returns the signals charged to uid."""
        with self._mu:
            return self._counts.get(uid, 0)


def _released(info: SignalInfo) -> None:
    if info.account is not None:
        info.account.release(info)


class PendingSignals:
    """PendingSignals is a set of pending signals (struct sigpending).

    Preconditions: every method is called with SignalHandlers.mu held.
    """

    __slots__ = ("mask", "queues")

    def __init__(self) -> None:
        # Bit n-1 set if signal n is pending.
        self.mask = 0
        self.queues: dict[int, list[SignalInfo]] = {}

    def enqueue(self, info: SignalInfo) -> bool:
        """Adds a signal; returns False if a standard signal was already
        pending (it coalesces)."""
        signo = info.signo
        bit = S.sigmask(signo)
        if signo < S.SIGRTMIN and self.mask & bit:
            return False
        self.queues.setdefault(signo, []).append(info)
        self.mask |= bit
        return True

    def dequeue(self, blocked: int) -> SignalInfo | None:
        """Removes and returns the next deliverable signal: synchronous
        signals first, then the lowest number."""
        ready = self.mask & ~blocked
        if not ready:
            return None
        sync = ready & S.SYNCHRONOUS_MASK
        bits = sync if sync else ready
        signo = (bits & -bits).bit_length()
        return self.dequeue_signal(signo)

    def dequeue_signal(self, signo: int) -> SignalInfo | None:
        """Removes and returns the oldest instance of signo."""
        q = self.queues.get(signo)
        if not q:
            return None
        info = q.pop(0)
        if not q:
            del self.queues[signo]
            self.mask &= ~S.sigmask(signo)
        _released(info)
        if info.timer is not None:
            info.timer.on_dequeue(info)
        return info

    def discard(self, mask: int) -> None:
        """Drops every pending signal in mask."""
        if not self.mask & mask:
            return
        for signo in list(self.queues):
            if S.sigmask(signo) & mask:
                for info in self.queues.pop(signo):
                    _released(info)
                    if info.timer is not None:
                        info.timer.on_discard(info)
        self.mask &= ~mask

    def discard_from(self, source: SignalSource) -> None:
        """Drops every pending signal that source sent."""
        for signo in list(self.queues):
            q = self.queues[signo]
            kept = [info for info in q if info.timer is not source]
            if len(kept) == len(q):
                continue
            for info in q:
                if info.timer is source:
                    _released(info)
            if kept:
                self.queues[signo] = kept
            else:
                del self.queues[signo]
                self.mask &= ~S.sigmask(signo)
