"""setns(2): joining the namespace an nsfs file names (kernel/nsproxy.c).

unshare(2) and clone(2), which make namespaces, live with the other task
calls in sys_thread.py and kernel/task_clone.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sched as SC
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN, CAP_SYS_CHROOT
from pkg.sentry.kernel.uts_namespace import UTSNamespace
from pkg.sentry.syscalls.syscall import Args, partial, s32
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.mount import MountNamespace
from pkg.sentry.vfs.nsfs import NsFile

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# The CLONE_NEW* flag naming each kind of namespace file.
_NS_TYPES = {
    "cgroup": SC.CLONE_NEWCGROUP,
    "ipc": SC.CLONE_NEWIPC,
    "mnt": SC.CLONE_NEWNS,
    "net": SC.CLONE_NEWNET,
    "pid": SC.CLONE_NEWPID,
    "time": SC.CLONE_NEWTIME,
    "user": SC.CLONE_NEWUSER,
    "uts": SC.CLONE_NEWUTS,
}


def _join_mount_ns(t: Task, ns: MountNamespace) -> None:
    """Moves t into ns with its root and working directory at the top of
    the namespace's root (mntns_install)."""
    c = t.creds
    if not (c.has_capability(CAP_SYS_ADMIN) and c.has_capability(CAP_SYS_CHROOT)):
        raise SyscallError(errno.EPERM)
    fs = t.fs
    # Whoever shares the context would change namespace too.
    if fs.users != 1:
        raise SyscallError(errno.EINVAL)
    vfs = t.kernel.vfs
    mnt = ns.root
    while (top := vfs.get_mount_at(mnt, mnt.root)) is not None:
        mnt = top
    fs.set_mount_ns(ns, VirtualDentry(mnt, mnt.root))


def sys_setns(t: Task, args: Args) -> int:
    """setns(2) with a file of /proc/pid/ns: joins a mount or UTS
    namespace; joining the sandbox's only namespace of another kind changes
    nothing."""
    fd, nstype = s32(args[0]), s32(args[1])
    f = t.fd_table.get(fd)
    if not isinstance(f, NsFile):
        # TODO(#5): setns on a pidfd (a set of CLONE_NEW* flags).
        raise SyscallError(errno.EINVAL)
    if nstype and nstype != _NS_TYPES[f.kind]:
        raise SyscallError(errno.EINVAL)
    if isinstance(f.ns, MountNamespace):
        _join_mount_ns(t, f.ns)
    elif isinstance(f.ns, UTSNamespace):
        if not t.creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        t.uts_ns = f.ns
    elif f.kind == "user":
        # Joining one's own user namespace is refused (userns_install).
        raise SyscallError(errno.EINVAL)
    elif not t.creds.has_capability(CAP_SYS_ADMIN):
        # The namespace t is already in; joining it checks the same
        # capability (CAP_SYS_ADMIN in the namespace's owner).
        raise SyscallError(errno.EPERM)
    return 0


ENTRIES = [
    partial(
        N.SYS_setns,
        "setns",
        sys_setns,
        "nsfs files of mount and UTS namespaces; not pidfds (#5)",
    ),
]
