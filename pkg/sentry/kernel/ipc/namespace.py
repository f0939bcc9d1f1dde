"""IPCNamespace: the System V IPC objects and POSIX message queues that a
set of tasks can name.

TODO(#5): one namespace per sandbox; CLONE_NEWIPC still fails with EINVAL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.sentry.kernel.ipc.msg import MsgManager
from pkg.sentry.kernel.ipc.sem import SemManager
from pkg.sentry.kernel.ipc.shm import ShmManager

if TYPE_CHECKING:
    from pkg.sentry.pgalloc.memory_file import MemoryFile


class IPCNamespace:
    """IPCNamespace holds one registry per kind of IPC object.

    Attributes:
        shm: shared memory segments.
        sem: semaphore sets.
        msg: message queues.
    """

    def __init__(self, mf: MemoryFile) -> None:
        self.shm = ShmManager(mf)
        self.sem = SemManager()
        self.msg = MsgManager()
