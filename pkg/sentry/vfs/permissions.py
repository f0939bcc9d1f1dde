"""Permission checks shared by every filesystem (fs/namei.c, fs/attr.c).

Filesystems keep mode, owner and group in their own inodes and call these
with them, so that every filesystem decides access the way Linux's
generic_permission, setattr_prepare and may_delete do. Capabilities are
checked in the sandbox's one user namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import limits as L
from pkg.abi.linux import mount as MS
from pkg.abi.linux import signal as SIG
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import (
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    CAP_FOWNER,
    CAP_FSETID,
    CAP_MKNOD,
    CAP_SETFCAP,
    CAP_SYS_ADMIN,
)
from pkg.sentry.vfs.options import UTIME_NOW, SetStatOptions

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.resolving_path import ResolvingPath

# Access types (MAY_* of include/linux/fs.h).
MAY_EXEC = 0x1
MAY_WRITE = 0x2
MAY_READ = 0x4
MAY_APPEND = 0x8

_SETSTAT_MASK = (
    S.STATX_MODE | S.STATX_UID | S.STATX_GID | S.STATX_SIZE | S.STATX_ATIME
) | S.STATX_MTIME


def access_types_for_open_flags(flags: int) -> int:
    """Returns the access open(2) with flags needs on the file
    (ACC_MODE plus O_TRUNC's write)."""
    acc = flags & F.O_ACCMODE
    if flags & F.O_PATH:
        return 0
    ats = 0
    if acc in (F.O_RDONLY, F.O_RDWR, 3):
        ats |= MAY_READ
    if acc in (F.O_WRONLY, F.O_RDWR, 3):
        ats |= MAY_WRITE
    if flags & F.O_TRUNC:
        ats |= MAY_WRITE
    return ats


def generic_check_permissions(
    creds: Credentials, ats: int, mode: int, kuid: int, kgid: int
) -> None:
    """Checks that creds may access a file with mode, owner and group
    (generic_permission).

    Raises:
        SyscallError: EACCES.
    """
    if creds.fsuid == kuid:
        perms = (mode >> 6) & 7
    elif creds.in_group(kgid):
        perms = (mode >> 3) & 7
    else:
        perms = mode & 7
    ats &= MAY_READ | MAY_WRITE | MAY_EXEC
    if perms & ats == ats:
        return
    if S.S_ISDIR(mode):
        if not ats & MAY_WRITE and creds.has_capability(CAP_DAC_READ_SEARCH):
            return
        if creds.has_capability(CAP_DAC_OVERRIDE):
            return
        raise SyscallError(errno.EACCES)
    if ats == MAY_READ and creds.has_capability(CAP_DAC_READ_SEARCH):
        return
    if (not ats & MAY_EXEC or mode & 0o111) and creds.has_capability(CAP_DAC_OVERRIDE):
        return
    raise SyscallError(errno.EACCES)


def can_act_as_owner(creds: Credentials, kuid: int) -> bool:
    """Reports whether creds own the file or hold CAP_FOWNER
    (inode_owner_or_capable)."""
    return creds.fsuid == kuid or creds.has_capability(CAP_FOWNER)


def check_delete_sticky(
    creds: Credentials, dir_mode: int, dir_uid: int, child_uid: int
) -> None:
    """Refuses to remove or replace a name in a sticky directory that the
    caller owns neither (check_sticky).

    Raises:
        SyscallError: EPERM.
    """
    if not dir_mode & S.S_ISVTX:
        return
    if creds.fsuid in (dir_uid, child_uid):
        return
    if creds.has_capability(CAP_FOWNER):
        return
    raise SyscallError(errno.EPERM)


class AccessChecker(Protocol):
    """AccessChecker is a file's access check, as its filesystem makes it."""

    def check_permissions(self, creds: Credentials, ats: int) -> None: ...


class FileAttrs(AccessChecker, Protocol):
    """FileAttrs is what the checks below read of a file that a filesystem
    keeps: its mode, owner and type, and its access check."""

    mode: int
    uid: int
    gid: int

    @property
    def file_type(self) -> int: ...


def may_delete(
    creds: Credentials,
    dir_attrs: FileAttrs,
    child: Dentry,
    child_uid: int,
    is_dir: bool,
) -> None:
    """may_delete checks that creds may remove child's name from a directory,
    as may_delete in fs/namei.c does.

    Args:
        creds: the caller's credentials.
        dir_attrs: the directory's attributes.
        child: the dentry whose name goes.
        child_uid: its owner.
        is_dir: whether the operation removes a directory (rmdir(2), or a
            rename of one).

    Raises:
        SyscallError: EACCES (no write and search permission on the
            directory), EPERM (a sticky directory), ENOTDIR or EISDIR (the
            child is not what is_dir says), EBUSY (a filesystem's root).
    """
    dir_attrs.check_permissions(creds, MAY_WRITE | MAY_EXEC)
    check_delete_sticky(creds, dir_attrs.mode, dir_attrs.uid, child_uid)
    child_is_dir = child.is_dir()
    if is_dir and not child_is_dir:
        raise SyscallError(errno.ENOTDIR)
    if not is_dir and child_is_dir:
        raise SyscallError(errno.EISDIR)
    if is_dir and child.parent_dentry() is None:
        raise SyscallError(errno.EBUSY)


def check_search_dir(creds: Credentials, d: Dentry, attrs: AccessChecker) -> None:
    """check_search_dir checks that d is a directory creds may search, as
    chdir(2) and chroot(2) require.

    Args:
        creds: the caller's credentials.
        d: the dentry.
        attrs: its access check.

    Raises:
        SyscallError: ENOTDIR, EACCES.
    """
    if not d.is_dir():
        raise SyscallError(errno.ENOTDIR)
    attrs.check_permissions(creds, MAY_EXEC)


def may_create(
    rp: ResolvingPath,
    parent: Dentry,
    dir_attrs: FileAttrs,
    exists: bool,
    is_dir: bool,
    link_source: Mount | None = None,
) -> None:
    """may_create checks that rp's last component may be made in parent once
    the name is looked up, as filename_create and may_create in fs/namei.c
    do.

    Args:
        rp: the resolution, at its last component.
        parent: the directory to make it in.
        dir_attrs: the directory's attributes.
        exists: whether the name is taken.
        is_dir: whether a directory is made (a trailing slash is allowed).
        link_source: for link(2), the mount of the file linked to.

    Raises:
        SyscallError: EEXIST (the name is taken), ENOENT (a trailing slash
            on a file that is no directory, or a removed directory), EXDEV
            (link(2) across mounts), EROFS, EACCES.
    """
    if exists:
        raise SyscallError(errno.EEXIST)
    if not is_dir and rp.must_be_dir():
        raise SyscallError(errno.ENOENT)
    if link_source is not None and link_source is not rp.mount:
        # link(2) across mounts, checked once the new name is known free.
        raise SyscallError(errno.EXDEV)
    rp.mount.check_begin_write()
    if parent.is_dead():
        raise SyscallError(errno.ENOENT)
    dir_attrs.check_permissions(rp.creds, MAY_WRITE | MAY_EXEC)


def init_owner(
    creds: Credentials, dir_attrs: FileAttrs, mode: int, is_dir: bool
) -> tuple[int, int, int]:
    """init_owner returns (mode, uid, gid) of a new file, as inode_init_owner
    in fs/inode.c decides them: the group of a set-group-ID directory, which
    a new directory inherits the bit of, and no set-group-ID bit on a new
    executable file of a group the caller is not in.

    Args:
        creds: the creator's credentials.
        dir_attrs: the attributes of the directory it is made in.
        mode: the requested mode.
        is_dir: whether the new file is a directory.
    """
    if dir_attrs.mode & S.S_ISGID:
        gid = dir_attrs.gid
        if is_dir:
            mode |= S.S_ISGID
    else:
        gid = creds.fsgid
    if (
        not is_dir
        and mode & S.S_ISGID
        and mode & S.S_IXGRP
        and not creds.in_group(gid)
        and not creds.has_capability(CAP_FSETID)
    ):
        mode &= ~S.S_ISGID
    return mode, creds.fsuid, gid


# The file capabilities' attribute (XATTR_NAME_CAPS).
_XATTR_NAME_CAPS = FS.XATTR_SECURITY_PREFIX + b"capability"


def check_xattr_permission(
    creds: Credentials, attrs: FileAttrs, name: bytes, write: bool
) -> None:
    """check_xattr_permission checks access to extended attribute name of a
    file, as xattr_permission in fs/xattr.c does.

    Args:
        creds: the caller's credentials.
        attrs: the file's attributes.
        name: the attribute's full name.
        write: whether the attribute is set or removed.

    Raises:
        SyscallError: EPERM or ENODATA (trusted.* without CAP_SYS_ADMIN;
            user.* on a file that is neither regular nor a directory), EPERM
            (user.* of a sticky directory the caller does not own; writing
            security.* without CAP_SYS_ADMIN, security.capability without
            CAP_SETFCAP), EACCES, EOPNOTSUPP (system.* and unknown
            namespaces).
    """
    if name.startswith(FS.XATTR_TRUSTED_PREFIX):
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        return
    if name.startswith(FS.XATTR_USER_PREFIX):
        if attrs.file_type not in (S.S_IFREG, S.S_IFDIR):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        if (
            write
            and attrs.file_type == S.S_IFDIR
            and attrs.mode & S.S_ISVTX
            and not can_act_as_owner(creds, attrs.uid)
        ):
            raise SyscallError(errno.EPERM)
        attrs.check_permissions(creds, MAY_WRITE if write else MAY_READ)
        return
    if name.startswith(FS.XATTR_SECURITY_PREFIX):
        # The VFS leaves security.* to the LSM; with none, the capability
        # module decides (cap_inode_setxattr, cap_inode_removexattr): no
        # file permission is needed, reading is free, writing needs
        # CAP_SYS_ADMIN, or CAP_SETFCAP for file capabilities.
        # (sys_xattr.py checks a security.capability value's header.)
        if write:
            cap = CAP_SETFCAP if name == _XATTR_NAME_CAPS else CAP_SYS_ADMIN
            if not creds.has_capability(cap):
                raise SyscallError(errno.EPERM)
        return
    # system.* (POSIX ACLs) and unknown namespaces.
    raise SyscallError(errno.EOPNOTSUPP)


def check_set_stat(
    t: Task | None,
    creds: Credentials,
    opts: SetStatOptions,
    mode: int,
    kuid: int,
    kgid: int,
    via_fd: bool = False,
) -> None:
    """Checks that creds may change the attributes opts names on a file with
    mode, owner and group (setattr_prepare, utimes and truncate checks).

    Args:
        t: the calling task, for RLIMIT_FSIZE; None inside the sentry.
        creds: the caller's credentials.
        opts: the change.
        mode, kuid, kgid: the file's current mode, owner and group.
        via_fd: the change comes through an open file: ftruncate's file
            has already been checked for writing.

    Raises:
        SyscallError: EPERM, EACCES, EISDIR, EINVAL or EFBIG.
    """
    mask = opts.mask
    if mask & ~_SETSTAT_MASK:
        raise SyscallError(errno.EPERM)
    if mask & S.STATX_SIZE:
        if S.S_ISDIR(mode):
            raise SyscallError(errno.EISDIR)
        if not S.S_ISREG(mode):
            raise SyscallError(errno.EINVAL)
        if not via_fd:
            generic_check_permissions(creds, MAY_WRITE, mode, kuid, kgid)
        if t is not None:
            check_file_size_limit(t, opts.size, 0)
    if mask & S.STATX_MODE and not can_act_as_owner(creds, kuid):
        raise SyscallError(errno.EPERM)
    if mask & S.STATX_UID and opts.uid != -1:
        if not (
            (creds.fsuid == kuid and opts.uid == kuid)
            or creds.has_capability(CAP_CHOWN)
        ):
            raise SyscallError(errno.EPERM)
    if mask & S.STATX_GID and opts.gid != -1:
        if not (
            (creds.fsuid == kuid and (creds.in_group(opts.gid) or opts.gid == kgid))
            or creds.has_capability(CAP_CHOWN)
        ):
            raise SyscallError(errno.EPERM)
    if mask & (S.STATX_ATIME | S.STATX_MTIME):
        touch = opts.atime_ns == UTIME_NOW and opts.mtime_ns == UTIME_NOW
        if not can_act_as_owner(creds, kuid):
            if not touch:
                raise SyscallError(errno.EPERM)
            generic_check_permissions(creds, MAY_WRITE, mode, kuid, kgid)


def apply_set_stat_mode_bits(
    creds: Credentials, opts: SetStatOptions, mode: int, kgid: int
) -> int:
    """Returns the permission bits a file has after the change opts makes,
    with the set-user-ID and set-group-ID bits dropped where Linux drops
    them (chmod by a non-member, chown of a non-directory)."""
    perm = mode & S.S_IALLUGO
    new_gid = opts.gid if opts.mask & S.STATX_GID and opts.gid != -1 else kgid
    if opts.mask & S.STATX_MODE:
        perm = opts.mode & S.S_IALLUGO
        if not (creds.in_group(new_gid) or creds.has_capability(CAP_FSETID)):
            perm &= ~S.S_ISGID
    if opts.mask & (S.STATX_UID | S.STATX_GID) and not S.S_ISDIR(mode):
        perm &= ~S.S_ISUID
        if perm & S.S_IXGRP:
            perm &= ~S.S_ISGID
    return perm


def kill_priv_on_write(creds: Credentials, mode: int) -> int:
    """Returns mode with set-user-ID (and group-executable set-group-ID)
    cleared, as a write by a caller without CAP_FSETID does
    (file_remove_privs)."""
    if not mode & (S.S_ISUID | S.S_ISGID) or creds.has_capability(CAP_FSETID):
        return mode
    mode &= ~S.S_ISUID
    if mode & S.S_IXGRP:
        mode &= ~S.S_ISGID
    return mode


def check_file_size_limit(t: Task, offset: int, length: int) -> int:
    """Returns how many of length bytes at offset RLIMIT_FSIZE allows
    (generic_write_check_limits).

    Raises:
        SyscallError: EFBIG, after sending SIGXFSZ, when nothing may be
            written.
    """
    limit = t.tg.limits.soft(L.RLIMIT_FSIZE)
    if limit == L.RLIM_INFINITY or offset + length <= limit:
        return length
    if offset >= limit:
        # The kernel package imports the VFS; importing it back at the top
        # would make the two packages depend on each other.
        from pkg.sentry.kernel.signals import SignalInfo  # noqa: PLC0415
        from pkg.sentry.kernel.task_signals import send_to_task  # noqa: PLC0415

        send_to_task(t, SignalInfo(signo=SIG.SIGXFSZ, code=SIG.SI_USER, pid=t.pid))
        raise SyscallError(errno.EFBIG)
    return limit - offset


def check_mknod(creds: Credentials, mode: int, major: int, minor: int) -> None:
    """Checks that creds may create a device node (vfs_mknod): it takes
    CAP_MKNOD, except for an overlay whiteout (character device 0/0).

    Raises:
        SyscallError: EPERM.
    """
    fmt = mode & S.S_IFMT
    if fmt not in (S.S_IFCHR, S.S_IFBLK):
        return
    if fmt == S.S_IFCHR and major == 0 and minor == 0:
        return
    if not creds.has_capability(CAP_MKNOD):
        raise SyscallError(errno.EPERM)


def check_create_name(name: bytes) -> None:
    """Checks a new name's length (NAME_MAX).

    Raises:
        SyscallError: ENAMETOOLONG.
    """
    if len(name) > 255:
        raise SyscallError(errno.ENAMETOOLONG)


def check_open(
    creds: Credentials,
    mount: Mount,
    flags: int,
    exec_: bool,
    mode: int,
    kuid: int,
    kgid: int,
) -> None:
    """Checks that creds may open an existing file of mode, owner and group
    with flags through mount (may_open). O_PATH opens need none of this.

    Args:
        exec_: the open is execve's (needs MAY_EXEC instead of read).

    Raises:
        SyscallError: ELOOP for a symbolic link, EISDIR for writing a
            directory, EACCES, EPERM for O_NOATIME by a non-owner, EROFS for
            writing through a read-only mount.
    """
    ats = MAY_EXEC if exec_ else access_types_for_open_flags(flags)
    fmt = mode & S.S_IFMT
    if fmt == S.S_IFLNK:
        raise SyscallError(errno.ELOOP)
    if fmt == S.S_IFDIR:
        if ats & MAY_WRITE:
            raise SyscallError(errno.EISDIR)
        if ats & MAY_EXEC:
            raise SyscallError(errno.EACCES)
    elif fmt in (S.S_IFBLK, S.S_IFCHR):
        if mount.flags & MS.MS_NODEV:
            raise SyscallError(errno.EACCES)
        if ats & MAY_EXEC:
            raise SyscallError(errno.EACCES)
    elif fmt in (S.S_IFIFO, S.S_IFSOCK):
        if ats & MAY_EXEC:
            raise SyscallError(errno.EACCES)
    elif fmt == S.S_IFREG and ats & MAY_EXEC:
        if mount.flags & MS.MS_NOEXEC:
            raise SyscallError(errno.EACCES)
    generic_check_permissions(creds, ats, mode, kuid, kgid)
    if flags & F.O_NOATIME and not can_act_as_owner(creds, kuid):
        raise SyscallError(errno.EPERM)
    if ats & MAY_WRITE and fmt in (S.S_IFREG, S.S_IFDIR):
        mount.check_begin_write()
