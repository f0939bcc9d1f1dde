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
from pkg.sentry.kernel.ipc.namespace import IPCNamespace, ipc_of
from pkg.sentry.kernel.pidfd import PidFD
from pkg.sentry.kernel.uts_namespace import UTSNamespace, uts_of
from pkg.sentry.syscalls.linux.sys_thread import may_access
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
_ALL_NS_FLAGS = sum(_NS_TYPES.values())


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


def _join_uts_ns(t: Task, uts: UTSNamespace) -> None:
    """Moves t into uts (utsns_install)."""
    if not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    t.uts_ns = uts


def _join_ipc_ns(t: Task, ipc: IPCNamespace) -> None:
    """Moves t into ipc (ipcns_install): its SEM_UNDO list is applied first,
    as exit_sem does, since the old namespace's sets become unreachable."""
    if not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    old = ipc_of(t)
    if old is ipc:
        return
    if len(t.tg.tasks) == 1:
        old.sem.exit_undo(t)
    if not ipc.try_inc_ref():
        raise SyscallError(errno.EINVAL)
    t.ipc_ns = None if ipc is t.kernel.ipc else ipc
    old.dec_users()


def _join_single_ns(t: Task, kind: str) -> None:
    """Checks a join of the sandbox's only namespace of kind, which t is
    already in: it changes nothing."""
    if kind == "user":
        # Joining one's own user namespace is refused (userns_install).
        raise SyscallError(errno.EINVAL)
    # The capability that joining checks (CAP_SYS_ADMIN in the owner).
    if not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)


def _setns_pidfd(t: Task, f: PidFD, flags: int) -> None:
    """Joins the namespaces flags names of the process f refers to
    (validate_nsset): a mount namespace first, as Linux installs them, and
    all or nothing as far as the checks go."""
    if not flags or flags & ~_ALL_NS_FLAGS:
        raise SyscallError(errno.EINVAL)
    target = f.task if f.task is not None else f.tg.leader
    if target is None or f.target_exited() or target.exiting:
        raise SyscallError(errno.ESRCH)
    if not may_access(t, target.tg):
        raise SyscallError(errno.EPERM)
    if flags & SC.CLONE_NEWUSER:
        _join_single_ns(t, "user")
    mnt_ns = target.fs.mount_ns if flags & SC.CLONE_NEWNS else None
    if mnt_ns is not None and not mnt_ns.try_inc_ref():
        raise SyscallError(errno.ESRCH)
    try:
        # Every check before any change.
        c = t.creds
        if not c.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        if mnt_ns is not None:
            if not c.has_capability(CAP_SYS_CHROOT):
                raise SyscallError(errno.EPERM)
            if t.fs.users != 1:
                raise SyscallError(errno.EINVAL)
            _join_mount_ns(t, mnt_ns)
        if flags & SC.CLONE_NEWUTS:
            _join_uts_ns(t, uts_of(target))
        if flags & SC.CLONE_NEWIPC:
            _join_ipc_ns(t, ipc_of(target))
    finally:
        if mnt_ns is not None:
            mnt_ns.dec_ref()


def sys_setns(t: Task, args: Args) -> int:
    """setns(2): with a file of /proc/pid/ns, joins that mount, UTS or IPC
    namespace; with a pidfd, the namespaces flags names of that process.
    Joining the sandbox's only namespace of another kind changes nothing.
    """
    fd, nstype = s32(args[0]), s32(args[1])
    f = t.fd_table.get(fd)
    if isinstance(f, PidFD):
        _setns_pidfd(t, f, nstype)
        return 0
    if not isinstance(f, NsFile):
        raise SyscallError(errno.EINVAL)
    if nstype and nstype != _NS_TYPES[f.kind]:
        raise SyscallError(errno.EINVAL)
    if isinstance(f.ns, MountNamespace):
        _join_mount_ns(t, f.ns)
    elif isinstance(f.ns, UTSNamespace):
        _join_uts_ns(t, f.ns)
    elif isinstance(f.ns, IPCNamespace):
        _join_ipc_ns(t, f.ns)
    else:
        _join_single_ns(t, f.kind)
    return 0


ENTRIES = [
    partial(
        N.SYS_setns,
        "setns",
        sys_setns,
        "mount, UTS and IPC namespaces exist; the others are the sandbox's only "
        "ones (#4)",
    ),
]
