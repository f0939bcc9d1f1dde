"""SignalFD: the file behind signalfd(2) (fs/signalfd.c).

Reading a signalfd dequeues pending signals of its mask from the reading
task, its own pending set first and then its process's, and returns each as
a struct signalfd_siginfo. The file is readable while such a signal is
pending for the task that polls it: like Linux, which looks at `current`,
the answer belongs to the task asking (current_task), so a signalfd shared
with a child after fork reports the child's signals to the child.

Waiters register on the SignalHandlers' signalfd_queue of the task that
registers them (sighand->signalfd_wqh), which sending a signal notifies.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import signal as S
from pkg.abi.linux.signalfd import SIGNALFD_SIGINFO_SIZE, signalfd_siginfo
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.anon.anon_inode import AnonFile
from pkg.sentry.kernel.task import current_task
from pkg.sentry.kernel.task_signals import dequeue_signal_locked, pending_mask_locked
from pkg.sentry.kernel.waiter import EVENT_IN, Entry, Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.signals import SignalInfo
    from pkg.sentry.kernel.task import Task


class SignalFD(AnonFile):
    """SignalFD is a signalfd: the set of signals it reads."""

    __slots__ = ("_creator", "_mask", "_reg_mu", "_registrations")

    NAME = "signalfd"

    def __init__(self, creator: Task, mask: int, flags: int) -> None:
        super().__init__(F.O_RDWR | (flags & F.O_NONBLOCK))
        self._creator = creator
        self._mask = mask & ~S.UNBLOCKABLE_MASK
        self._reg_mu = threading.Lock()
        # Which queue each registered entry went to, for unregistering from
        # another task.
        self._registrations: dict[Entry, Queue] = {}

    @property
    def mask(self) -> int:
        """The signals the file reads (for /proc/self/fdinfo's sigmask)."""
        return self._mask

    def set_mask(self, t: Task, mask: int) -> None:
        """Replaces the set of signals (signalfd4 on an existing signalfd)
        and wakes waiters, whose readiness may have changed."""
        sh = t.tg.signal_handlers
        with sh.mu:
            self._mask = mask & ~S.UNBLOCKABLE_MASK
            sh.signalfd_queue.notify(EVENT_IN)

    def _task(self) -> Task:
        t = current_task()
        return t if t is not None else self._creator

    def _dequeue(self, t: Task) -> SignalInfo | None:
        with t.tg.signal_handlers.mu:
            return dequeue_signal_locked(t, ~self._mask & S.FULL_MASK)

    def read(self, t: Task, length: int) -> bytes:
        """Dequeues as many matching signals as fit in length bytes,
        waiting for the first unless non-blocking.

        Raises:
            SyscallError: EINVAL if not even one fits, EAGAIN when none is
                pending and the file is non-blocking, ERESTARTSYS when
                interrupted while waiting.
        """
        count = length // SIGNALFD_SIGINFO_SIZE
        if count == 0:
            raise SyscallError(errno.EINVAL)
        info = self._dequeue(t)
        if info is None:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            info = self._wait(t)
        out = [signalfd_siginfo(info.pack())]
        while len(out) < count:
            info = self._dequeue(t)
            if info is None:
                break
            out.append(signalfd_siginfo(info.pack()))
        return b"".join(out)

    def _wait(self, t: Task) -> SignalInfo:
        queue = t.tg.signal_handlers.signalfd_queue
        entry = Entry(lambda _mask: t.wake(), EVENT_IN)
        queue.register(entry)
        try:
            while True:
                info = self._dequeue(t)
                if info is not None:
                    return info
                if t.interrupted:
                    raise SyscallError(errno.ERESTARTSYS)
                try:
                    t.block()
                except SyscallError as e:
                    # Interrupted: a signal of the mask may be what
                    # interrupted us; look once more before giving up.
                    if e.errno != errno.ERESTARTSYS:
                        raise
        finally:
            queue.unregister(entry)

    def seek(self, t: Task, offset: int, whence: int) -> int:
        # noop_llseek.
        return 0

    def readiness(self, mask: int) -> int:
        t = self._task()
        with t.tg.signal_handlers.mu:
            pending = pending_mask_locked(t) & self._mask
        return mask & EVENT_IN if pending else 0

    def event_register(self, entry: Entry) -> None:
        queue = self._task().tg.signal_handlers.signalfd_queue
        with self._reg_mu:
            self._registrations[entry] = queue
        queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        with self._reg_mu:
            queue = self._registrations.pop(entry, None)
        if queue is not None:
            queue.unregister(entry)


def new_signalfd(t: Task, mask: int, flags: int) -> SignalFD:
    """Returns a new signalfd for mask; flags are signalfd4's, validated."""
    return SignalFD(t, mask, flags)
