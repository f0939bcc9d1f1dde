"""TaskSet: every task and process in the sandbox, and their ids.

The sandbox has one PID namespace; ids are allocated like Linux's pid
allocator: increasing, wrapping at pid_max, skipping ids still in use. An id
stays in use while anything refers to it, as a struct pid does in Linux: a
live task, an unreaped zombie, or a process group or session named after it
(a process group outlives the process that created it while other members
remain, and no new process may take its number meanwhile).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.sessions import ProcessGroup, Session
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

PID_MAX = 4194304


class TaskSet:
    """TaskSet maps ids to tasks, thread groups, process groups and sessions.

    Attributes:
        mu: guards the maps, the process tree (parent/children links),
            process group and session membership, and the users counts of
            shared task resources, as Linux's tasklist_lock does.
    """

    def __init__(self) -> None:
        self.mu = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.thread_groups: dict[int, ThreadGroup] = {}
        self.process_groups: dict[int, ProcessGroup] = {}
        self.sessions: dict[int, Session] = {}
        # References to each id in use (see the module docstring).
        self._refs: dict[int, int] = {}
        self._last = 0
        # Set when no task is left.
        self.empty = threading.Event()

    def allocate_id(self) -> int:
        """Returns a free id, holding one reference to it.

        Preconditions: mu is held.

        Raises:
            SyscallError: EAGAIN if every id is in use.
        """
        for _ in range(PID_MAX):
            self._last = self._last + 1 if self._last + 1 < PID_MAX else 1
            if self._last not in self._refs:
                self._refs[self._last] = 1
                return self._last
        raise SyscallError(errno.EAGAIN)

    def allocate_specific_id(self, tid: int) -> int:
        """Takes tid itself (clone3's set_tid), holding one reference.

        Preconditions: mu is held; 0 < tid < PID_MAX.

        Raises:
            SyscallError: EEXIST if tid is in use.
        """
        if tid in self._refs:
            raise SyscallError(errno.EEXIST)
        self._refs[tid] = 1
        return tid

    def ref_id(self, tid: int) -> None:
        """Takes another reference to an id in use.

        Preconditions: mu is held.
        """
        self._refs[tid] += 1

    def release_id(self, tid: int) -> None:
        """Drops a reference to tid; the last one makes it available again.

        Preconditions: mu is held.
        """
        n = self._refs.get(tid, 0) - 1
        if n > 0:
            self._refs[tid] = n
        else:
            self._refs.pop(tid, None)

    def id_in_use(self, tid: int) -> bool:
        """Reports whether anything refers to tid.

        Preconditions: mu is held.
        """
        return tid in self._refs

    def last_id(self) -> int:
        """Returns the id allocated last (/proc/loadavg's last pid)."""
        with self.mu:
            return self._last

    def live_tasks(self) -> list[Task]:
        """Returns a snapshot of every live task."""
        with self.mu:
            return list(self.tasks.values())

    def find_task(self, tid: int) -> Task | None:
        """Returns the live task with id tid, or None."""
        with self.mu:
            return self.tasks.get(tid)
