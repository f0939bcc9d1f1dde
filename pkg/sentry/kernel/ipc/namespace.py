"""IPCNamespace: the System V IPC objects and POSIX message queues that a
set of tasks can name.

TODO(#5): one namespace per sandbox; CLONE_NEWIPC still fails with EINVAL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import ipc as I
from pkg.sentry.kernel.ipc.msg import MsgManager
from pkg.sentry.kernel.ipc.sem import SemManager
from pkg.sentry.kernel.ipc.shm import ShmManager

if TYPE_CHECKING:
    from pkg.sentry.pgalloc.memory_file import MemoryFile


@dataclass(slots=True)
class MqLimits:
    """MqLimits are the POSIX message queue limits of /proc/sys/fs/mqueue."""

    queues_max: int = I.DFLT_QUEUESMAX
    msg_max: int = I.DFLT_MSGMAX
    msgsize_max: int = I.DFLT_MSGSIZEMAX
    msg_default: int = I.DFLT_MSGMAX
    msgsize_default: int = I.DFLT_MSGSIZEMAX


class IPCNamespace:
    """IPCNamespace holds one registry per kind of IPC object.

    Attributes:
        shm: shared memory segments.
        sem: semaphore sets.
        msg: message queues.
        mq_limits: the POSIX message queue limits.
        mq_fs: the mqueue filesystem instance holding the POSIX message
            queues, made on first use (pkg/sentry/fsimpl/mqueue).
    """

    def __init__(self, mf: MemoryFile) -> None:
        self.shm = ShmManager(mf)
        self.sem = SemManager()
        self.msg = MsgManager()
        self.mq_limits = MqLimits()
        self.mq_fs: object | None = None
