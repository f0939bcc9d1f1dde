"""procfs: the "proc" filesystem type (fs/proc/root.c, fs/proc/base.c).

/proc holds one directory per process ([pid], whose task/ has one per
thread), the links self and thread-self, which depend on the task looking,
and the system-wide files (system.py) and sysctls (sysctl.py). Everything
is made up from the sentry's state on each read; see kernfs for how files
are served.

Mount options: hidepid= and gid= hide processes per mount (hidepid.py);
subset= is accepted and ignored (TODO(#5)); any other option fails with
EINVAL.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fs as FS
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import (
    DirInode,
    Inode,
    KernfsFilesystem,
    StaticData,
    StaticDir,
    StaticSymlink,
)
from pkg.sentry.fsimpl.proc import system
from pkg.sentry.fsimpl.proc.hidepid import PidVisibility
from pkg.sentry.fsimpl.proc.net import net_dir
from pkg.sentry.fsimpl.proc.sysctl import random_uuid, sys_tree
from pkg.sentry.fsimpl.proc.task_dir import ProcessDir, ThreadDir
from pkg.sentry.fsimpl.proc.task_files import TaskRef
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.vfs.filesystem import FilesystemType, parse_mount_data

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.ipc.namespace import IPCNamespace
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem, GetFilesystemOptions
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# Mount options proc accepts (proc_parse_param).
_OPTIONS = {"hidepid", "gid", "subset"}


def _self(t: Task | None) -> bytes:
    if t is None:
        raise SyscallError(errno.ENOENT)
    return str(t.tg.tgid).encode()


def _thread_self(t: Task | None) -> bytes:
    if t is None:
        raise SyscallError(errno.ENOENT)
    return f"{t.tg.tgid}/task/{t.tid}".encode()


class ProcRoot(DirInode):
    """ProcRoot is /proc: the fixed entries, then a directory per process."""

    __slots__ = ("_dirs", "_mu", "fixed", "kernel", "vis")

    def __init__(
        self, kernel: Kernel, fixed: dict[bytes, Inode], vis: PidVisibility
    ) -> None:
        super().__init__(0o555, ino=1)
        self.kernel = kernel
        self.fixed = fixed
        self.vis = vis
        self._mu = threading.Lock()
        self._dirs: dict[int, tuple[ThreadGroup, ProcessDir]] = {}

    def _processes(self) -> list[ThreadGroup]:
        ts = self.kernel.tasks
        with ts.mu:
            groups = list(ts.thread_groups.values())
        return sorted((g for g in groups if not g.reaped), key=lambda g: g.tgid)

    def _visible(self, t: Task | None, tg: ThreadGroup) -> bool:
        if t is None:
            return True
        return self.vis.visible(t.creds, t.tg, TaskRef(tg, None))

    def _dir(self, tg: ThreadGroup) -> ProcessDir:
        with self._mu:
            entry = self._dirs.get(tg.tgid)
            if entry is not None and entry[0] is tg:
                return entry[1]
            for tgid in [k for k, (g, _) in self._dirs.items() if g.reaped]:
                del self._dirs[tgid]
            d = ProcessDir(tg, self.vis)
            self._dirs[tg.tgid] = (tg, d)
            return d

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        inode = self.fixed.get(name)
        if inode is not None:
            return inode
        if not name.isdigit() or (len(name) > 1 and name[0:1] == b"0"):
            return None
        ts = self.kernel.tasks
        tid = int(name)
        with ts.mu:
            tg = ts.thread_groups.get(tid)
            task = ts.tasks.get(tid)
        if tg is None and task is not None:
            # A thread id works too, though it is not listed (as Linux's
            # proc_pid_lookup).
            tg = task.tg
            if not self._visible(t, tg):
                return None
            if task is not tg.leader:
                return ThreadDir(tg, task, self.vis)
        if tg is None or tg.reaped or not self._visible(t, tg):
            return None
        return self._dir(tg)

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        out = list(self.fixed.items())
        out += [
            (str(tg.tgid).encode(), self._dir(tg))
            for tg in self._processes()
            if self._visible(t, tg)
        ]
        return out

    def nlink(self) -> int:
        return 2 + len(self._processes())


class ProcType(FilesystemType):
    """ProcType makes procfs instances of one kernel. Host facts are
    captured when it is made, at start-up."""

    name = "proc"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.facts = system.capture_host_facts()
        self.boot_id = random_uuid()
        self._sys: StaticDir | None = None
        self._mu = threading.Lock()
        self.boot_time_ns = time.time_ns()

    def _sys_tree(self) -> StaticDir:
        # One /proc/sys per kernel: every mount shares its tunables.
        with self._mu:
            if self._sys is None:
                self._sys = sys_tree(self.kernel, self.boot_id)
            return self._sys

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        options = parse_mount_data(opts.data)
        for key in options:
            if key not in _OPTIONS:
                raise SyscallError(errno.EINVAL)
        vis = PidVisibility.parse(options)
        k = self.kernel
        facts = self.facts
        fixed: dict[bytes, Inode] = {
            b"cmdline": StaticData(lambda t: system.cmdline()),
            b"cpuinfo": StaticData(lambda t: system.cpuinfo(facts, k.num_cpus)),
            b"devices": StaticData(lambda t: system.devices(k)),
            b"diskstats": StaticData(b""),
            b"filesystems": StaticData(lambda t: system.filesystems(k)),
            b"loadavg": StaticData(lambda t: system.loadavg(k)),
            b"meminfo": StaticData(lambda t: system.meminfo(k)),
            b"modules": StaticData(b""),
            b"mounts": StaticSymlink(b"self/mounts"),
            b"net": net_dir(k),
            b"partitions": StaticData(lambda t: system.partitions()),
            b"self": StaticSymlink(_self),
            b"stat": StaticData(lambda t: system.stat(k, t)),
            b"swaps": StaticData(lambda t: system.swaps()),
            b"sys": self._sys_tree(),
            b"sysvipc": StaticDir(
                {
                    b"msg": StaticData(
                        lambda t: "".join(_ipc(k, t).msg.proc_lines()).encode()
                    ),
                    b"sem": StaticData(
                        lambda t: "".join(_ipc(k, t).sem.proc_lines()).encode()
                    ),
                    b"shm": StaticData(
                        lambda t: "".join(_ipc(k, t).shm.proc_lines()).encode()
                    ),
                }
            ),
            b"thread-self": StaticSymlink(_thread_self),
            b"uptime": StaticData(lambda t: system.uptime(k)),
            b"version": StaticData(lambda t: system.version()),
            b"vmstat": StaticData(lambda t: system.vmstat(k)),
        }
        root = ProcRoot(k, dict(sorted(fixed.items())), vis)
        fs = ProcFilesystem(
            vfs, self, root, FS.PROC_SUPER_MAGIC, boot_time_ns=self.boot_time_ns
        )
        return fs, fs.root


def _ipc(k: Kernel, t: Task | None) -> IPCNamespace:
    """Returns the IPC namespace of the reading task (the initial one for
    the sentry's own reads)."""
    return ipc_of(t) if t is not None else k.ipc


class ProcFilesystem(KernfsFilesystem):
    """ProcFilesystem is one proc mount; its options are its root's."""

    def mount_options(self) -> str:
        root = self.root.inode
        assert isinstance(root, ProcRoot)
        return root.vis.mount_options()
