"""MessageQueue: the contents of one POSIX message queue (ipc/mqueue.c).

Messages are kept in priority order, oldest first within a priority;
mq_receive takes the first. A sender waits while the queue holds mq_maxmsg
messages, a receiver while it is empty; both wait on the queue's waiter
Queue (EVENT_OUT, EVENT_IN), which poll(2) and epoll watch too. Unlike Linux,
which hands a message straight to the longest-waiting receiver, every waiter
is woken and retries; which of several blocked receivers gets a message is
therefore not in arrival order.

A process may register for notification (mq_notify): when a message
arrives in an empty queue and no receiver is blocked, the registration is
used once and removed.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import (
    EVENT_IN,
    EVENT_OUT,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
    Queue,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


@dataclass(slots=True)
class Notification:
    """Notification is an mq_notify registration.

    Attributes:
        owner_pid: the registering process's id (NOTIFY_PID).
        owner: an object identifying the registering process (its
            ThreadGroup).
        owner_files: its descriptor table, whose close of a descriptor of
            the queue removes the registration (mqueue_flush_file).
        notify: SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD.
        signo: the signal for SIGEV_SIGNAL.
        deliver: sends the notification (the argument is the sending
            task's pid and uid); None for SIGEV_NONE.
        removed: tells a SIGEV_THREAD listener the registration is gone
            without having fired; with True, only releases what the
            registration holds (it was never made).
    """

    owner_pid: int
    owner: object
    owner_files: object
    notify: int
    signo: int
    deliver: Callable[[int, int], None] | None
    removed: Callable[..., None] | None = None


class MessageQueue:
    """MessageQueue holds the messages, attributes and waiters of a queue.

    Attributes:
        maxmsg, msgsize: mq_maxmsg and mq_msgsize, fixed at creation.
        queue: the waiter queue (EVENT_IN: a message, EVENT_OUT: room).
    """

    __slots__ = (
        "_messages",
        "_mu",
        "_receivers",
        "_seq",
        "maxmsg",
        "msgsize",
        "notification",
        "qsize",
        "queue",
    )

    def __init__(self, maxmsg: int, msgsize: int) -> None:
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self._mu = threading.Lock()
        # (-priority, sequence, data), sorted.
        self._messages: list[tuple[int, int, bytes]] = []
        self._seq = itertools.count()
        # Total bytes queued (QSIZE).
        self.qsize = 0
        self._receivers = 0
        self.notification: Notification | None = None
        self.queue = Queue()

    @property
    def curmsgs(self) -> int:
        """The number of messages queued."""
        return len(self._messages)

    def readiness(self, mask: int) -> int:
        """Returns poll events: readable with a message, writable with
        room."""
        ready = 0
        if self._messages:
            ready |= EVENT_IN | EVENT_RDNORM
        if len(self._messages) < self.maxmsg:
            ready |= EVENT_OUT | EVENT_WRNORM
        return ready & mask

    def _wait(
        self, t: Task, event: int, attempt: Callable[[], bool], deadline: float | None
    ) -> None:
        entry = Entry(lambda _m: t.wake(), event)
        self.queue.register(entry)
        try:
            while not attempt():
                t.block(deadline)
        finally:
            self.queue.unregister(entry)

    def send(
        self,
        t: Task,
        data: bytes,
        prio: int,
        nonblock: bool,
        deadline: float | None,
    ) -> None:
        """Queues a message (mq_timedsend(2)).

        Raises:
            SyscallError: EAGAIN when full and nonblock, ETIMEDOUT past the
                deadline, ERESTARTSYS when interrupted.
        """
        fire: Notification | None = None

        def attempt() -> bool:
            nonlocal fire
            with self._mu:
                if len(self._messages) >= self.maxmsg:
                    return False
                was_empty = not self._messages
                bisect.insort(self._messages, (-prio, next(self._seq), data))
                self.qsize += len(data)
                if was_empty and self._receivers == 0 and self.notification:
                    fire, self.notification = self.notification, None
                return True

        if not attempt():
            if nonblock:
                raise SyscallError(errno.EAGAIN)
            self._wait(t, EVENT_OUT, attempt, deadline)
        self.queue.notify(EVENT_IN | EVENT_RDNORM)
        if fire is not None and fire.deliver is not None:
            fire.deliver(t.pid, t.creds.ruid)

    def receive(
        self, t: Task, nonblock: bool, deadline: float | None
    ) -> tuple[bytes, int]:
        """Takes the first message (mq_timedreceive(2)).

        Returns:
            The message and its priority.

        Raises:
            SyscallError: EAGAIN when empty and nonblock, ETIMEDOUT past the
                deadline, ERESTARTSYS when interrupted.
        """
        got: tuple[int, int, bytes] | None = None

        def attempt() -> bool:
            nonlocal got
            with self._mu:
                if not self._messages:
                    return False
                got = self._messages.pop(0)
                self.qsize -= len(got[2])
                return True

        if not attempt():
            if nonblock:
                raise SyscallError(errno.EAGAIN)
            with self._mu:
                self._receivers += 1
            try:
                self._wait(t, EVENT_IN, attempt, deadline)
            finally:
                with self._mu:
                    self._receivers -= 1
        self.queue.notify(EVENT_OUT | EVENT_WRNORM)
        assert got is not None
        return got[2], -got[0]

    def set_notification(self, n: Notification | None, owner: object) -> None:
        """Registers n, or with None removes owner's registration
        (mq_notify(2)).

        Raises:
            SyscallError: EBUSY if another registration exists.
        """
        with self._mu:
            cur = self.notification
            if n is None:
                if cur is None or cur.owner is not owner:
                    return
                self.notification = None
            else:
                if cur is not None:
                    raise SyscallError(errno.EBUSY)
                self.notification = n
                return
        if cur.removed is not None:
            cur.removed()

    def drop_notification_of(self, owner_files: object) -> None:
        """Removes the registration if owner_files made it (a descriptor
        of the queue closed by the registering process)."""
        with self._mu:
            cur = self.notification
            if cur is None or cur.owner_files is not owner_files:
                return
            self.notification = None
        if cur.removed is not None:
            cur.removed()

    def info(self) -> bytes:
        """Returns what reading the queue's file gives."""
        with self._mu:
            n = self.notification
            notify = n.notify if n is not None else 0
            signo = n.signo if n is not None and n.notify == 0 else 0
            pid = n.owner_pid if n is not None else 0
            return (
                f"QSIZE:{self.qsize:<10d} NOTIFY:{notify:<5d} "
                f"SIGNO:{signo:<5d} NOTIFY_PID:{pid:<6d}\n"
            ).encode()
