"""IPCNamespace: the System V IPC objects and POSIX message queues that a
set of tasks can name (ipc/namespace.c).

The kernel has an initial namespace; clone(2) and unshare(2) with
CLONE_NEWIPC give a task an empty one of its own, with the default limits.

When the last task of a namespace other than the initial one exits, its
objects go as in Linux's free_ipc_ns: sets and message queues at once,
segments once detached, queue names at once (open queues live on).

setns(2) joins one through its /proc/pid/ns/ipc file or a pidfd.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.msg import MsgManager
from pkg.sentry.kernel.ipc.sem import SemManager
from pkg.sentry.kernel.ipc.shm import ShmManager
from pkg.sentry.vfs.nsfs import INIT_IPC_NS_INO, alloc_ns_ino

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.pgalloc.memory_file import MemoryFile


@dataclass(slots=True)
class MqLimits:
    """MqLimits are the POSIX message queue limits of /proc/sys/fs/mqueue."""

    queues_max: int = I.DFLT_QUEUESMAX
    msg_max: int = I.DFLT_MSGMAX
    msgsize_max: int = I.DFLT_MSGSIZEMAX
    msg_default: int = I.DFLT_MSGMAX
    msgsize_default: int = I.DFLT_MSGSIZEMAX


# The limits under /proc/sys that the namespace keeps: path -> (which
# object, attribute, lowest, highest), bounded as ipc/ipc_sysctl.c and
# ipc/mq_sysctl.c bound them. TODO(#5): kernel/sem and
# kernel/shm_rmid_forced are stored-only tunables.
IPC_SYSCTLS: dict[str, tuple[str, str, int, int]] = {
    "fs/mqueue/queues_max": ("mq", "queues_max", 0, (1 << 31) - 1),
    "fs/mqueue/msg_max": ("mq", "msg_max", I.MIN_MSGMAX, I.HARD_MSGMAX),
    "fs/mqueue/msg_default": ("mq", "msg_default", I.MIN_MSGMAX, I.HARD_MSGMAX),
    "fs/mqueue/msgsize_max": (
        "mq", "msgsize_max", I.MIN_MSGSIZEMAX, I.HARD_MSGSIZEMAX,
    ),
    "fs/mqueue/msgsize_default": (
        "mq", "msgsize_default", I.MIN_MSGSIZEMAX, I.HARD_MSGSIZEMAX,
    ),
    "kernel/msgmax": ("msg", "msgmax", 0, (1 << 31) - 1),
    "kernel/msgmnb": ("msg", "msgmnb", 0, (1 << 31) - 1),
    "kernel/msgmni": ("msg", "msgmni", 0, I.IPCMNI),
    "kernel/shmmax": ("shm", "shmmax", 0, (1 << 64) - 1),
    "kernel/shmall": ("shm", "shmall", 0, (1 << 64) - 1),
    "kernel/shmmni": ("shm", "shmmni", 0, I.IPCMNI),
}  # fmt: skip


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

    def __init__(self, mf: MemoryFile, initial: bool = False) -> None:
        # What /proc/pid/ns/ipc shows: the initial namespace's number as
        # Linux's, fresh ones for the others.
        self.initial = initial
        self.ino = INIT_IPC_NS_INO if initial else alloc_ns_ino()
        self.shm = ShmManager(mf)
        self.sem = SemManager()
        self.msg = MsgManager()
        self.mq_limits = MqLimits()
        self.mq_fs: object | None = None
        # Tasks in the namespace and open nsfs files of it (not counted for
        # the initial one, which never goes); once 0, it is gone for good.
        self._users = 0
        self._gone = False
        self._users_mu = threading.Lock()

    def inc_users(self) -> None:
        """Counts a task entering the namespace (clone, unshare, setns)."""
        if not self.try_inc_ref():
            raise AssertionError("ipc: entering a namespace that is gone")

    def try_inc_ref(self) -> bool:
        """Takes a reference unless the namespace is gone (for an nsfs
        file, as ns_get_path does)."""
        with self._users_mu:
            if self._gone:
                return False
            self._users += 1
            return True

    def dec_ref(self) -> None:
        """Drops what try_inc_ref took."""
        self.dec_users()

    def dec_users(self) -> None:
        """Counts a task (or file) leaving; the last one frees every
        object."""
        if self.initial:
            return
        with self._users_mu:
            self._users -= 1
            if self._users:
                return
            self._gone = True
        self.shm.remove_all()
        self.sem.remove_all()
        self.msg.remove_all()
        fs = self.mq_fs
        if fs is not None:
            fs.unlink_all()  # type: ignore[attr-defined]

    def _limit(self, path: str) -> tuple[object, str, int, int]:
        which, attr, lo, hi = IPC_SYSCTLS[path]
        obj = {"mq": self.mq_limits, "msg": self.msg, "shm": self.shm}[which]
        return obj, attr, lo, hi

    def sysctl_get(self, path: str) -> str:
        """Returns the value of the limit at path (a key of IPC_SYSCTLS)."""
        obj, attr, _, _ = self._limit(path)
        return str(getattr(obj, attr))

    def sysctl_set(self, path: str, text: str) -> None:
        """Sets the limit at path from its text.

        Raises:
            SyscallError: EINVAL for a value that is no number or out of
                range.
        """
        obj, attr, lo, hi = self._limit(path)
        try:
            value = int(text.strip())
        except ValueError:
            raise SyscallError(errno.EINVAL) from None
        if not lo <= value <= hi:
            raise SyscallError(errno.EINVAL)
        setattr(obj, attr, value)


def ipc_of(t: Task) -> IPCNamespace:
    """Returns the IPC namespace t is in."""
    ns = t.ipc_ns
    return ns if ns is not None else t.kernel.ipc
