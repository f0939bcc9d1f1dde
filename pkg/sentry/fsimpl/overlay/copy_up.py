"""Copy-up: making the upper layer hold a lower file before it changes
(fs/overlayfs/copy_up.c).

A file is copied after its parent directory, so the upper layer always has
every directory above an upper file. The copy gets the lower file's type,
contents (holes stay holes where the lower file reads as zeros), user
extended attributes, mode, owner and times. A directory is copied empty:
its lower entries keep showing through the merge. If any step fails the
partial copy is removed and the dentry stays lower-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.options import (
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    SetStatOptions,
    SetXattrOptions,
)

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.overlay.dentry import OverlayDentry
    from pkg.sentry.fsimpl.overlay.overlay import OverlayFilesystem
    from pkg.sentry.vfs.dentry import Dentry

# Bytes copied per read of the lower file.
_CHUNK = 1 << 20


def copy_up(fs: OverlayFilesystem, d: OverlayDentry, with_data: bool = True) -> None:
    """Gives d (and its parents) an upper file. Precondition: fs.mu held.

    Args:
        fs: the overlay.
        d: the dentry.
        with_data: copy a regular file's contents; False when the caller is
            about to truncate it to nothing.

    Raises:
        SyscallError: the upper layer refused (ENOSPC...).
    """
    if d.upper is not None:
        return
    parent = d.parent
    assert parent is not None and d.lower is not None
    copy_up(fs, parent)
    assert parent.upper is not None
    if d.is_dead():
        raise SyscallError(errno.ENOENT)
    st = fs.layer_stat(fs.lower, d.lower)
    kind = st.mode & S.S_IFMT
    perm = st.mode & S.S_IALLUGO
    pop = fs.upper.child(parent.upper, d.name)
    vfs = fs.vfs
    creds = fs.creds
    if kind == S.S_IFDIR:
        vfs.mkdir_at(None, creds, pop, MkdirOptions(perm & (S.S_IRWXUGO | S.S_ISVTX)))
    elif kind == S.S_IFREG:
        vfs.mknod_at(None, creds, pop, MknodOptions(S.S_IFREG | 0o600))
    elif kind == S.S_IFLNK:
        target = vfs.readlink_at(None, creds, fs.lower.here(d.lower))
        vfs.symlink_at(None, creds, pop, target)
    else:
        vfs.mknod_at(
            None, creds, pop, MknodOptions(st.mode, st.rdev_major, st.rdev_minor)
        )
    upper = fs.layer_lookup(fs.upper, parent.upper, d.name)
    if upper is None:
        raise SyscallError(errno.EIO)
    try:
        if kind == S.S_IFREG and with_data:
            _copy_data(fs, d.lower, upper, st.size)
        if kind in (S.S_IFREG, S.S_IFDIR):
            _copy_xattrs(fs, d.lower, upper)
        mask = S.STATX_UID | S.STATX_GID | S.STATX_ATIME | S.STATX_MTIME
        if kind != S.S_IFLNK:
            mask |= S.STATX_MODE
        vfs.setstat_at(
            None,
            creds,
            fs.upper.here(upper),
            SetStatOptions(
                mask=mask,
                mode=perm,
                uid=st.uid,
                gid=st.gid,
                atime_ns=st.atime_ns,
                mtime_ns=st.mtime_ns,
            ),
        )
    except BaseException:
        _remove(fs, parent.upper, d.name, kind == S.S_IFDIR)
        raise
    d.upper = upper
    if kind != S.S_IFDIR:
        fs.origin_inos[fs.layer_stat(fs.upper, upper).ino] = d.ino


def _copy_data(fs: OverlayFilesystem, lower: Dentry, upper: Dentry, size: int) -> None:
    vfs = fs.vfs
    src = vfs.open_at(None, fs.creds, fs.lower.here(lower), OpenOptions(F.O_RDONLY))
    try:
        dst = vfs.open_at(None, fs.creds, fs.upper.here(upper), OpenOptions(F.O_WRONLY))
        try:
            offset = 0
            while True:
                chunk = src.pread(None, _CHUNK, offset)  # type: ignore[arg-type]
                if not chunk:
                    break
                # Runs of zeros stay holes.
                if chunk.count(0) != len(chunk):
                    dst.pwrite(None, chunk, offset)  # type: ignore[arg-type]
                offset += len(chunk)
            if offset:
                vfs.setstat_at(
                    None,
                    fs.creds,
                    fs.upper.here(upper),
                    SetStatOptions(mask=S.STATX_SIZE, size=offset),
                )
        finally:
            dst.dec_ref()
    finally:
        src.dec_ref()


def _copy_xattrs(fs: OverlayFilesystem, lower: Dentry, upper: Dentry) -> None:
    vfs = fs.vfs
    try:
        names = vfs.listxattr_at(None, fs.creds, fs.lower.here(lower))
    except SyscallError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return
        raise
    for name in names:
        if not name.startswith(FS.XATTR_USER_PREFIX):
            continue
        value = vfs.getxattr_at(None, fs.creds, fs.lower.here(lower), name)
        vfs.setxattr_at(
            None, fs.creds, fs.upper.here(upper), SetXattrOptions(name, value)
        )


def _remove(fs: OverlayFilesystem, parent: Dentry, name: bytes, is_dir: bool) -> None:
    pop = fs.upper.child(parent, name)
    try:
        if is_dir:
            fs.vfs.rmdir_at(None, fs.creds, pop)
        else:
            fs.vfs.unlink_at(None, fs.creds, pop)
    except SyscallError:
        pass
