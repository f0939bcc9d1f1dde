"""/proc/[pid] and /proc/[pid]/task: directories of processes and threads.

The directory Inodes are made once per process and thread and kept while
it lives, so that a path into /proc/[pid] stays the same dentry; they
vanish (ENOENT) once the process is reaped or the thread has exited.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.sentry.fsimpl.kernfs.kernfs import DirInode, Inode
from pkg.sentry.fsimpl.proc.fd import FdDir, FdInfoDir
from pkg.sentry.fsimpl.proc.hidepid import PidVisibility
from pkg.sentry.fsimpl.proc.task_files import (
    DATA_FILES,
    LINKS,
    PROCESS_DATA_FILES,
    THREAD_DATA_FILES,
    TaskData,
    TaskDir,
    TaskInode,
    TaskLink,
    TaskRef,
)
from pkg.sentry.fsimpl.proc.task_mem import MemFile
from pkg.sentry.fsimpl.proc.task_ns import ns_dir
from pkg.sentry.kernel.task import current_task

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup


def task_files(ref: TaskRef, thread_dir: bool) -> dict[bytes, Inode]:
    """Returns the children of /proc/pid (thread_dir False) or of
    /proc/pid/task/tid, by name."""
    files: dict[bytes, Inode] = {
        b"fd": FdDir(ref),
        b"fdinfo": FdInfoDir(ref),
        b"mem": MemFile(ref),
        b"ns": ns_dir(ref),
    }
    table = DATA_FILES + (THREAD_DATA_FILES if thread_dir else PROCESS_DATA_FILES)
    for name, fn, perm, writer in table:
        files[name] = TaskData(ref, fn, perm, writer)
    for name, target in LINKS:
        files[name] = TaskLink(ref, target)
    if not thread_dir:
        files[b"task"] = TasksDir(ref)
    return dict(sorted(files.items()))


class _HidingDir(TaskDir):
    """_HidingDir is a task directory that the mount's hidepid= option may
    close to a task (proc_pid_permission)."""

    __slots__ = ("vis",)
    vis: PidVisibility

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        t = current_task()
        self.vis.check_enter(creds, t.tg if t is not None else None, self.ref)
        super().check_permissions(creds, ats)


class ProcessDir(_HidingDir):
    """ProcessDir is /proc/[pid]."""

    __slots__ = ()

    def __init__(self, tg: ThreadGroup, vis: PidVisibility | None = None) -> None:
        ref = TaskRef(tg, None)
        super().__init__(ref, task_files(ref, thread_dir=False))
        self.vis = vis or PidVisibility()


class ThreadDir(_HidingDir):
    """ThreadDir is /proc/[pid]/task/[tid] (or /proc/[tid])."""

    __slots__ = ()

    def __init__(
        self, tg: ThreadGroup, task: Task, vis: PidVisibility | None = None
    ) -> None:
        ref = TaskRef(tg, task)
        super().__init__(ref, task_files(ref, thread_dir=True))
        self.vis = vis or PidVisibility()


class TasksDir(TaskInode, DirInode):
    """TasksDir is /proc/[pid]/task: one directory per live thread."""

    __slots__ = ("_dirs", "_mu", "ref")

    def __init__(self, ref: TaskRef) -> None:
        DirInode.__init__(self, 0o555)
        self.ref = ref
        self._mu = threading.Lock()
        self._dirs: dict[int, tuple[Task, ThreadDir]] = {}

    def _threads(self) -> list[Task]:
        if self.ref.tg.zombie:
            return []
        return sorted(list(self.ref.tg.tasks), key=lambda x: x.tid)

    def _dir(self, task: Task) -> ThreadDir:
        with self._mu:
            entry = self._dirs.get(task.tid)
            if entry is not None and entry[0] is task:
                return entry[1]
            live = {x.tid for x in self.ref.tg.tasks}
            for tid in [k for k in self._dirs if k not in live]:
                del self._dirs[tid]
            d = ThreadDir(self.ref.tg, task)
            self._dirs[task.tid] = (task, d)
            return d

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        if not name.isdigit():
            return None
        tid = int(name)
        for task in self._threads():
            if task.tid == tid:
                return self._dir(task)
        return None

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        return [(str(x.tid).encode(), self._dir(x)) for x in self._threads()]

    def nlink(self) -> int:
        return 2 + len(self.ref.tg.tasks)
