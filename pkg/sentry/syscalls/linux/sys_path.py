"""Names: mkdir(2), mknod(2), link(2), symlink(2), unlink(2), rmdir(2),
rename(2) and renameat2(2), readlink(2), and their *at forms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_DAC_READ_SEARCH, CAP_MKNOD
from pkg.sentry.syscalls.syscall import Args, full, s32, u32
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.options import MkdirOptions, MknodOptions, RenameOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.task_path import copy_in_path, file_for_empty_path, path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_RENAME_FLAGS = F.RENAME_NOREPLACE | F.RENAME_EXCHANGE | F.RENAME_WHITEOUT


def _mkdirat(t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    path = copy_in_path(t, path_addr)
    pop = path_operation(t, dirfd, path, follow=False)
    mode = mode & (S.S_IRWXUGO | S.S_ISVTX) & ~t.fs.umask
    t.kernel.vfs.mkdir_at(t, t.creds, pop, MkdirOptions(mode))
    return 0


def sys_mkdir(t: Task, args: Args) -> int:
    """mkdir(2)."""
    return _mkdirat(t, F.AT_FDCWD, args[0], u32(args[1]))


def sys_mkdirat(t: Task, args: Args) -> int:
    """mkdirat(2)."""
    return _mkdirat(t, s32(args[0]), args[1], u32(args[2]))


def _mknodat(t: Task, dirfd: int, path_addr: int, mode: int, dev: int) -> int:
    fmt = mode & S.S_IFMT
    if fmt == S.S_IFDIR:
        raise SyscallError(errno.EPERM)
    if fmt not in (0, S.S_IFREG, S.S_IFCHR, S.S_IFBLK, S.S_IFIFO, S.S_IFSOCK):
        raise SyscallError(errno.EINVAL)
    path = copy_in_path(t, path_addr)
    pop = path_operation(t, dirfd, path, follow=False)
    if fmt == 0:
        fmt = S.S_IFREG
    perm = mode & S.S_IALLUGO & ~t.fs.umask
    dev &= 0xFFFFFFFF
    opts = MknodOptions(fmt | perm, S.dev_major(dev), S.dev_minor(dev))
    t.kernel.vfs.mknod_at(t, t.creds, pop, opts)
    return 0


def sys_mknod(t: Task, args: Args) -> int:
    """mknod(2): regular files, FIFOs, sockets and (with CAP_MKNOD) device
    nodes; opening a device the sandbox lacks fails with ENXIO."""
    return _mknodat(t, F.AT_FDCWD, args[0], u32(args[1]), args[2])


def sys_mknodat(t: Task, args: Args) -> int:
    """mknodat(2)."""
    return _mknodat(t, s32(args[0]), args[1], u32(args[2]), args[3])


def _linkat(
    t: Task, olddirfd: int, old_addr: int, newdirfd: int, new_addr: int, flags: int
) -> int:
    if flags & ~(F.AT_SYMLINK_FOLLOW | F.AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    if flags & F.AT_EMPTY_PATH and not t.creds.has_capability(CAP_DAC_READ_SEARCH):
        raise SyscallError(errno.ENOENT)
    old_path = copy_in_path(t, old_addr)
    new_path = copy_in_path(t, new_addr)
    follow = bool(flags & F.AT_SYMLINK_FOLLOW)
    old = None
    if not old_path and flags & F.AT_EMPTY_PATH:
        f = file_for_empty_path(t, olddirfd)
        if f is not None:
            if f.vd is None:
                raise SyscallError(errno.ENOENT)
            old = PathOperation(root=t.fs.root, start=f.vd, path=b"", follow=False)
    if old is None:
        old = path_operation(
            t, olddirfd, old_path, follow, allow_empty=bool(flags & F.AT_EMPTY_PATH)
        )
    new = path_operation(t, newdirfd, new_path, follow=False)
    t.kernel.vfs.link_at(t, t.creds, old, new)
    return 0


def sys_link(t: Task, args: Args) -> int:
    """link(2)."""
    return _linkat(t, F.AT_FDCWD, args[0], F.AT_FDCWD, args[1], 0)


def sys_linkat(t: Task, args: Args) -> int:
    """linkat(2)."""
    return _linkat(t, s32(args[0]), args[1], s32(args[2]), args[3], s32(args[4]))


def _symlinkat(t: Task, target_addr: int, dirfd: int, path_addr: int) -> int:
    target = copy_in_path(t, target_addr)
    path = copy_in_path(t, path_addr)
    if not target:
        raise SyscallError(errno.ENOENT)
    pop = path_operation(t, dirfd, path, follow=False)
    t.kernel.vfs.symlink_at(t, t.creds, pop, target)
    return 0


def sys_symlink(t: Task, args: Args) -> int:
    """symlink(2)."""
    return _symlinkat(t, args[0], F.AT_FDCWD, args[1])


def sys_symlinkat(t: Task, args: Args) -> int:
    """symlinkat(2)."""
    return _symlinkat(t, args[0], s32(args[1]), args[2])


def _unlinkat(t: Task, dirfd: int, path_addr: int, rmdir: bool) -> int:
    path = copy_in_path(t, path_addr)
    pop = path_operation(t, dirfd, path, follow=False)
    if rmdir:
        t.kernel.vfs.rmdir_at(t, t.creds, pop)
    else:
        t.kernel.vfs.unlink_at(t, t.creds, pop)
    return 0


def sys_unlink(t: Task, args: Args) -> int:
    """unlink(2)."""
    return _unlinkat(t, F.AT_FDCWD, args[0], False)


def sys_rmdir(t: Task, args: Args) -> int:
    """rmdir(2)."""
    return _unlinkat(t, F.AT_FDCWD, args[0], True)


def sys_unlinkat(t: Task, args: Args) -> int:
    """unlinkat(2)."""
    flags = s32(args[2])
    if flags & ~F.AT_REMOVEDIR:
        raise SyscallError(errno.EINVAL)
    return _unlinkat(t, s32(args[0]), args[1], bool(flags & F.AT_REMOVEDIR))


def _renameat2(
    t: Task, olddirfd: int, old_addr: int, newdirfd: int, new_addr: int, flags: int
) -> int:
    if flags & ~_RENAME_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & F.RENAME_EXCHANGE and flags & (F.RENAME_NOREPLACE | F.RENAME_WHITEOUT):
        raise SyscallError(errno.EINVAL)
    if flags & F.RENAME_WHITEOUT and not t.creds.has_capability(CAP_MKNOD):
        raise SyscallError(errno.EPERM)
    old = path_operation(t, olddirfd, copy_in_path(t, old_addr), follow=False)
    new = path_operation(t, newdirfd, copy_in_path(t, new_addr), follow=False)
    t.kernel.vfs.rename_at(t, t.creds, old, new, RenameOptions(flags))
    return 0


def sys_rename(t: Task, args: Args) -> int:
    """rename(2)."""
    return _renameat2(t, F.AT_FDCWD, args[0], F.AT_FDCWD, args[1], 0)


def sys_renameat(t: Task, args: Args) -> int:
    """renameat(2)."""
    return _renameat2(t, s32(args[0]), args[1], s32(args[2]), args[3], 0)


def sys_renameat2(t: Task, args: Args) -> int:
    """renameat2(2): RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT."""
    return _renameat2(t, s32(args[0]), args[1], s32(args[2]), args[3], u32(args[4]))


def _readlinkat(t: Task, dirfd: int, path_addr: int, buf: int, size: int) -> int:
    if s32(size) <= 0:
        raise SyscallError(errno.EINVAL)
    path = copy_in_path(t, path_addr)
    vfs = t.kernel.vfs
    if not path:
        # An empty path names dirfd itself (an O_PATH symlink, say).
        f = file_for_empty_path(t, dirfd)
        vd: VirtualDentry | None = t.fs.cwd if f is None else f.vd
        if vd is None:
            raise SyscallError(errno.ENOENT)
        pop = PathOperation(root=t.fs.root, start=vd, path=b"", follow=False)
        try:
            target = vfs.readlink_at(t, t.creds, pop)
        except SyscallError as e:
            if e.errno == errno.EINVAL:
                raise SyscallError(errno.ENOENT) from None
            raise
    else:
        pop = path_operation(t, dirfd, path, follow=False)
        target = vfs.readlink_at(t, t.creds, pop)
    data = target[: s32(size)]
    t.copy_out(buf, data)
    return len(data)


def sys_readlink(t: Task, args: Args) -> int:
    """readlink(2)."""
    return _readlinkat(t, F.AT_FDCWD, args[0], args[1], args[2])


def sys_readlinkat(t: Task, args: Args) -> int:
    """readlinkat(2)."""
    return _readlinkat(t, s32(args[0]), args[1], args[2], args[3])


ENTRIES = [
    full(N.SYS_rename, "rename", sys_rename),
    full(N.SYS_mkdir, "mkdir", sys_mkdir),
    full(N.SYS_rmdir, "rmdir", sys_rmdir),
    full(N.SYS_link, "link", sys_link),
    full(N.SYS_unlink, "unlink", sys_unlink),
    full(N.SYS_symlink, "symlink", sys_symlink),
    full(N.SYS_readlink, "readlink", sys_readlink),
    full(N.SYS_mknod, "mknod", sys_mknod),
    full(N.SYS_mkdirat, "mkdirat", sys_mkdirat),
    full(N.SYS_mknodat, "mknodat", sys_mknodat),
    full(N.SYS_unlinkat, "unlinkat", sys_unlinkat),
    full(N.SYS_renameat, "renameat", sys_renameat),
    full(N.SYS_linkat, "linkat", sys_linkat),
    full(N.SYS_symlinkat, "symlinkat", sys_symlinkat),
    full(N.SYS_readlinkat, "readlinkat", sys_readlinkat),
    full(N.SYS_renameat2, "renameat2", sys_renameat2),
]
