"""TaskSet: every task and process in the sandbox, and their ids.

The sandbox has one PID namespace; ids are allocated like Linux's pid
allocator: increasing, wrapping at pid_max, skipping ids still in use
(including those of zombies, which keep their id until reaped).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

PID_MAX = 4194304


class TaskSet:
    """TaskSet maps ids to tasks and thread groups.

    Attributes:
        mu: guards the maps and the process tree (parent/children links), as
            Linux's tasklist_lock does.
    """

    def __init__(self) -> None:
        self.mu = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.thread_groups: dict[int, ThreadGroup] = {}
        # Ids in use by live tasks or unreaped zombies.
        self._used: set[int] = set()
        self._last = 0
        # Set when no task is left.
        self.empty = threading.Event()

    def allocate_id(self) -> int:
        """Returns a free id.

        Preconditions: mu is held.
        """
        for _ in range(PID_MAX):
            self._last = self._last + 1 if self._last + 1 < PID_MAX else 1
            if self._last not in self._used:
                self._used.add(self._last)
                return self._last
        raise SyscallError(errno.EAGAIN)

    def release_id(self, tid: int) -> None:
        """Makes tid available again.

        Preconditions: mu is held.
        """
        self._used.discard(tid)

    def live_tasks(self) -> list[Task]:
        """Returns a snapshot of every live task."""
        with self.mu:
            return list(self.tasks.values())
