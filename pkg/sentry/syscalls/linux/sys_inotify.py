"""inotify_init(2), inotify_init1(2), inotify_add_watch(2) and
inotify_rm_watch(2). The instance is pkg/sentry/fsimpl/inotify; events come
from the filesystems through Dentry.inotify_with_parent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.inotify.inotify import WATCH_FLAGS, Inotify
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, full, s32, u32
from pkg.sentry.vfs.options import GetDentryOptions
from pkg.sentry.vfs.permissions import MAY_READ
from pkg.sentry.vfs.task_path import copy_in_path, path_operation
from pkg.sentry.vfs.watches import IN_ALL_EVENTS

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# inotify_init1's flags (IN_NONBLOCK and IN_CLOEXEC are O_NONBLOCK and
# O_CLOEXEC).
_INIT_FLAGS = F.O_NONBLOCK | F.O_CLOEXEC


def _init(t: Task, flags: int) -> int:
    if flags & ~_INIT_FLAGS:
        raise SyscallError(errno.EINVAL)
    f = Inotify(flags)
    try:
        return t.fd_table.new_fd(f, bool(flags & F.O_CLOEXEC), 0, fd_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def sys_inotify_init(t: Task, args: Args) -> int:
    """inotify_init(2)."""
    return _init(t, 0)


def sys_inotify_init1(t: Task, args: Args) -> int:
    """inotify_init1(2)."""
    return _init(t, s32(args[0]))


def _instance(t: Task, fd: int) -> Inotify:
    f = t.fd_table.get(fd)
    if not isinstance(f, Inotify):
        raise SyscallError(errno.EINVAL)
    return f


def sys_inotify_add_watch(t: Task, args: Args) -> int:
    """inotify_add_watch(2)."""
    fd, path_addr, mask = s32(args[0]), args[1], u32(args[2])
    if not mask & IN_ALL_EVENTS:
        raise SyscallError(errno.EINVAL)
    if mask & IN.IN_MASK_ADD and mask & IN.IN_MASK_CREATE:
        raise SyscallError(errno.EINVAL)
    if mask & ~(IN_ALL_EVENTS | WATCH_FLAGS):
        # Linux ignores unknown bits (only the ones above are checked).
        mask &= IN_ALL_EVENTS | WATCH_FLAGS
    inotify = _instance(t, fd)
    path = copy_in_path(t, path_addr)
    follow = not mask & IN.IN_DONT_FOLLOW
    if mask & IN.IN_ONLYDIR:
        path += b"/" if path and not path.endswith(b"/") else b""
    vfs = t.kernel.vfs
    pop = path_operation(t, F.AT_FDCWD, path, follow)
    vd = vfs.get_dentry_at(t, t.creds, pop, GetDentryOptions())
    if mask & IN.IN_ONLYDIR and not vd.dentry.is_dir():
        raise SyscallError(errno.ENOTDIR)
    vfs.access_at(t, t.creds, pop, MAY_READ)
    st = vfs.stat_at(t, t.creds, pop, S.STATX_INO)
    return inotify.add_watch(
        vd.dentry, mask, vd.mount.fs, st.ino, (st.dev_major, st.dev_minor)
    )


def sys_inotify_rm_watch(t: Task, args: Args) -> int:
    """inotify_rm_watch(2)."""
    fd, wd = s32(args[0]), s32(args[1])
    _instance(t, fd).rm_watch(wd)
    return 0


ENTRIES = [
    full(N.SYS_inotify_init, "inotify_init", sys_inotify_init),
    full(N.SYS_inotify_init1, "inotify_init1", sys_inotify_init1),
    full(N.SYS_inotify_add_watch, "inotify_add_watch", sys_inotify_add_watch),
    full(N.SYS_inotify_rm_watch, "inotify_rm_watch", sys_inotify_rm_watch),
]
