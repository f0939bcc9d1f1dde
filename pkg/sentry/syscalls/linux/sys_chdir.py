"""The working directory and the root: getcwd(2), chdir(2), fchdir(2),
chroot(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_CHROOT
from pkg.sentry.syscalls.syscall import Args, full, s32
from pkg.sentry.vfs.options import GetDentryOptions
from pkg.sentry.vfs.permissions import MAY_EXEC
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.task_path import copy_in_path, path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_UNREACHABLE = b"(unreachable)"


def sys_getcwd(t: Task, args: Args) -> int:
    """getcwd(2): returns the length including the terminator. A working
    directory outside the root is prefixed "(unreachable)", as Linux does."""
    addr, size = args[0], args[1]
    cwd = t.fs.cwd
    if cwd.dentry.is_dead():
        raise SyscallError(errno.ENOENT)
    path, reachable = t.kernel.vfs.path_name(t.fs.root, cwd)
    if not reachable:
        path = _UNREACHABLE + path
    data = path + b"\0"
    if size < len(data):
        raise SyscallError(errno.ERANGE)
    t.copy_out(addr, data)
    return len(data)


def sys_chdir(t: Task, args: Args) -> int:
    """chdir(2)."""
    pop = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[0]), follow=True)
    vd = t.kernel.vfs.get_dentry_at(
        t, t.creds, pop, GetDentryOptions(check_search_dir=True)
    )
    t.fs.set_cwd(vd)
    return 0


def sys_fchdir(t: Task, args: Args) -> int:
    """fchdir(2); O_PATH directories are accepted."""
    f = t.fd_table.get(s32(args[0]))
    vd = f.vd
    if vd is None or not vd.dentry.is_dir():
        raise SyscallError(errno.ENOTDIR)
    here = PathOperation(root=vd, start=vd, path=b"", follow=False)
    t.kernel.vfs.access_at(t, t.creds, here, MAY_EXEC)
    t.fs.set_cwd(vd)
    return 0


def sys_chroot(t: Task, args: Args) -> int:
    """chroot(2)."""
    pop = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[0]), follow=True)
    vd = t.kernel.vfs.get_dentry_at(
        t, t.creds, pop, GetDentryOptions(check_search_dir=True)
    )
    if not t.creds.has_capability(CAP_SYS_CHROOT):
        raise SyscallError(errno.EPERM)
    t.fs.set_root(vd)
    return 0


ENTRIES = [
    full(N.SYS_getcwd, "getcwd", sys_getcwd),
    full(N.SYS_chdir, "chdir", sys_chdir),
    full(N.SYS_fchdir, "fchdir", sys_fchdir),
    full(N.SYS_chroot, "chroot", sys_chroot),
]
