"""Mounts: mount(2), umount2(2), pivot_root(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mount as MS
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.mount import MOUNT_FLAGS_MASK
from pkg.sentry.vfs.options import GetDentryOptions
from pkg.sentry.vfs.task_path import copy_in_path, path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_PAGE_SIZE = 4096
# The flags path_mount clears before it looks at the operation.
_IGNORED_FOR_TYPE = (
    MS.MS_NOSUID
    | MS.MS_NOEXEC
    | MS.MS_NODEV
    | MS.MS_NOATIME
    | MS.MS_NODIRATIME
    | MS.MS_RELATIME
    | MS.MS_STRICTATIME
    | MS.MS_NOSYMFOLLOW
)


def _copy_in_data(t: Task, addr: int) -> str:
    """Reads mount(2)'s data: a string of at most a page (copy_mount_options
    copies a page; a filesystem taking text stops at the NUL)."""
    if addr == 0:
        return ""
    raw = t.mm.copy_in_partial(addr, _PAGE_SIZE)
    if not raw:
        raise SyscallError(errno.EFAULT)
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def sys_mount(t: Task, args: Args) -> int:
    """mount(2): new tmpfs (and other registered types), bind mounts
    (MS_BIND, MS_REC), MS_REMOUNT of mount flags, MS_MOVE, and propagation
    types (MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE), which new
    mounts, bind mounts and unmounts follow (propagation.py)."""
    source_addr, target_addr, type_addr, flags, data_addr = args[:5]
    flags = u32(flags)
    if flags & MS.MS_MGC_MSK == MS.MS_MGC_VAL:
        flags &= ~MS.MS_MGC_MSK
    if not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    vfs = t.kernel.vfs
    target = path_operation(t, F.AT_FDCWD, copy_in_path(t, target_addr), follow=True)
    mount_flags = flags & MOUNT_FLAGS_MASK
    if flags & MS.MS_REMOUNT:
        vd = vfs.get_dentry_at(t, t.creds, target, GetDentryOptions())
        vfs.remount(vd, mount_flags, bool(flags & MS.MS_BIND))
        return 0
    if flags & MS.MS_BIND:
        src_pop = path_operation(
            t, F.AT_FDCWD, copy_in_path(t, source_addr), follow=True
        )
        source = vfs.get_dentry_at(t, t.creds, src_pop, GetDentryOptions())
        vfs.bind_at(t, t.creds, source, target, bool(flags & MS.MS_REC), mount_flags)
        return 0
    if flags & MS.MS_PROPAGATION:
        vd = vfs.get_dentry_at(t, t.creds, target, GetDentryOptions())
        # Exactly one type, with MS_REC or MS_SILENT and any of the
        # per-mount flags path_mount drops first (flags_to_propagation_type).
        kind = flags & ~(MS.MS_REC | MS.MS_SILENT | _IGNORED_FOR_TYPE)
        if kind & (kind - 1):
            raise SyscallError(errno.EINVAL)
        vfs.change_propagation(t, vd, flags & (MS.MS_PROPAGATION | MS.MS_REC))
        return 0
    if flags & MS.MS_MOVE:
        src_pop = path_operation(
            t, F.AT_FDCWD, copy_in_path(t, source_addr), follow=True
        )
        source = vfs.get_dentry_at(t, t.creds, src_pop, GetDentryOptions())
        vfs.move_mount(source, target, t, t.creds)
        return 0
    if type_addr == 0:
        raise SyscallError(errno.EINVAL)
    fs_type = t.copy_in_string(type_addr, _PAGE_SIZE).decode(errors="replace")
    source = ""
    if source_addr:
        source = t.copy_in_string(source_addr, _PAGE_SIZE).decode(errors="replace")
    data = _copy_in_data(t, data_addr)
    opts = GetFilesystemOptions(source=source or "none", flags=mount_flags, data=data)
    vfs.mount_at(t, t.creds, target, fs_type, opts)
    return 0


def sys_umount2(t: Task, args: Args) -> int:
    """umount2(2)."""
    flags = s32(args[1])
    path = copy_in_path(t, args[0])
    follow = not flags & MS.UMOUNT_NOFOLLOW
    pop = path_operation(t, F.AT_FDCWD, path, follow=follow)
    t.kernel.vfs.umount_at(t, t.creds, pop, flags, t.fs.mount_ns, t.fs.root)
    return 0


def sys_pivot_root(t: Task, args: Args) -> int:
    """pivot_root(2): every task whose root or working directory was the old
    root moves to the new one, as chroot_fs_refs does."""
    new_root = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[0]), follow=True)
    put_old = path_operation(t, F.AT_FDCWD, copy_in_path(t, args[1]), follow=True)
    old_vd, new_vd = t.kernel.vfs.pivot_root(t, t.creds, new_root, put_old, t.fs.root)
    seen: set[int] = set()
    for other in t.kernel.tasks.live_tasks():
        fs = other.fs
        if id(fs) in seen:
            continue
        seen.add(id(fs))
        if fs.root == old_vd:
            fs.set_root(new_vd)
        if fs.cwd == old_vd:
            fs.set_cwd(new_vd)
    return 0


ENTRIES = [
    full(N.SYS_pivot_root, "pivot_root", sys_pivot_root),
    partial(
        N.SYS_mount,
        "mount",
        sys_mount,
        "tmpfs and bind mounts; proc, sysfs and devpts come later (#5)",
    ),
    partial(
        N.SYS_umount2,
        "umount2",
        sys_umount2,
        "MNT_EXPIRE marks are not kept",
    ),
]
