"""Process file descriptors (pidfd_open(2), CLONE_PIDFD; kernel/pid.c).

A pidfd refers to a process (or, with PIDFD_THREAD, to one thread) without
the reuse races of a numeric pid. It becomes readable when the process has
exited (every thread gone), and is the handle for pidfd_send_signal(2),
pidfd_getfd(2) and waitid(P_PIDFD).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import fcntl as F
from pkg.sentry.kernel.waiter import EVENT_HUP, EVENT_IN, EVENT_RDNORM, Entry
from pkg.sentry.vfs.file_description import FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

# pidfd_open(2) flags (include/uapi/linux/pidfd.h).
PIDFD_NONBLOCK = F.O_NONBLOCK
PIDFD_THREAD = F.O_EXCL


class PidFD(FileDescription):
    """PidFD is the file description behind a pidfd.

    Attributes:
        tg: the process referred to.
        task: for a PIDFD_THREAD pidfd, the thread referred to; else None.
    """

    __slots__ = ("task", "tg")

    def __init__(self, tg: ThreadGroup, task: Task | None, flags: int) -> None:
        super().__init__(F.O_RDWR | (flags & F.O_NONBLOCK))
        self.tg = tg
        self.task = task

    @property
    def thread(self) -> bool:
        """Reports whether the pidfd refers to a single thread."""
        return self.task is not None

    def target_exited(self) -> bool:
        """Reports whether what the pidfd refers to has exited."""
        t = self.task
        if t is not None:
            return t.kernel.tasks.find_task(t.tid) is not t
        return self.tg.zombie or self.tg.reaped

    def readiness(self, mask: int) -> int:
        ready = 0
        if self.target_exited():
            ready = EVENT_IN | EVENT_RDNORM
            if self.tg.reaped:
                ready |= EVENT_HUP
        return ready & (mask | EVENT_HUP)

    def event_register(self, entry: Entry) -> None:
        self.tg.exit_queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.tg.exit_queue.unregister(entry)

    def display_name(self) -> str:
        return "anon_inode:[pidfd]"
