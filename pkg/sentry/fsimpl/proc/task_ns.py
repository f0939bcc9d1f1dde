"""/proc/[pid]/ns: the namespaces of a task (fs/proc/namespaces.c).

Each entry is a magic link reading "kind:[inode]" that opens the
namespace itself (an nsfs file), which setns(2) joins. Mount, UTS and IPC
namespaces exist per task; the sandbox has one namespace of every other
kind, shown with the numbers of Linux's initial namespaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import SymlinkInode
from pkg.sentry.fsimpl.proc.task_files import TaskDir, TaskInode, TaskRef, may_access
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.kernel.uts_namespace import uts_of
from pkg.sentry.vfs import nsfs
from pkg.sentry.vfs.nsfs import NsFile

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription

# The inode numbers of the kinds the sandbox has one namespace of.
_SINGLE_NS_INOS = {
    "cgroup": nsfs.INIT_CGROUP_NS_INO,
    "net": nsfs.INIT_NET_NS_INO,
    "pid": nsfs.INIT_PID_NS_INO,
    "pid_for_children": nsfs.INIT_PID_NS_INO,
    "time": nsfs.INIT_TIME_NS_INO,
    "time_for_children": nsfs.INIT_TIME_NS_INO,
    "user": nsfs.INIT_USER_NS_INO,
}
NS_KINDS = sorted([*_SINGLE_NS_INOS, "ipc", "mnt", "uts"])


def _namespace(t: Task, kind: str) -> tuple[int, object | None]:
    """Returns the inode number of t's namespace of kind and the namespace
    object, if the kind has per-task namespaces.

    Raises:
        SyscallError: ENOENT for a task that has left its mount namespace
            (an exited one).
    """
    if kind == "mnt":
        ns = t.fs.mount_ns if t.fs is not None else None
        if ns is None or t.exiting:
            raise SyscallError(errno.ENOENT)
        return ns.ino, ns
    if kind == "uts":
        uts = uts_of(t)
        return uts.ino, uts
    if kind == "ipc":
        ipc = ipc_of(t)
        return ipc.ino, ipc
    return _SINGLE_NS_INOS[kind], None


class NsLink(TaskInode, SymlinkInode):
    """NsLink is /proc/pid/ns/<kind>: "kind:[inode]", leading to an
    NsFile."""

    __slots__ = ("kind", "ref")

    def __init__(self, ref: TaskRef, kind: str) -> None:
        SymlinkInode.__init__(self)
        self.ref = ref
        self.kind = kind

    def readlink(self, t: Task | None) -> bytes:
        ino, _ns = _namespace(self.ref.thread(), self.kind)
        kind = self.kind.removesuffix("_for_children")
        return f"{kind}:[{ino}]".encode()

    def jump(self, t: Task | None) -> VirtualDentry | FileDescription | None:
        ino, ns = _namespace(self.ref.thread(), self.kind)
        if self.kind in ("mnt", "ipc"):
            assert ns is not None
            # The file keeps the namespace (ns_get_path takes a reference).
            if not ns.try_inc_ref():  # type: ignore[attr-defined]
                raise SyscallError(errno.ENOENT)
        return NsFile(self.kind.removesuffix("_for_children"), ino, ns)

    def check_follow(self, creds: Credentials) -> None:
        if not may_access(creds, self.ref):
            raise SyscallError(errno.EACCES)


def ns_dir(ref: TaskRef) -> TaskDir:
    """Returns /proc/pid/ns."""
    return TaskDir(ref, {k.encode(): NsLink(ref, k) for k in NS_KINDS}, 0o511)
