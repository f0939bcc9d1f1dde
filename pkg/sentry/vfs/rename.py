"""The checks rename(2) makes before a filesystem moves anything.

Filesystems that keep their own directory trees (tmpfs, gofer, overlay)
look up both names under their locks and then call these, in Linux's order:
check_rename_targets for what do_renameat2 checks of the names found, then,
unless both names are one file (rename does nothing), may_rename for what
vfs_rename checks of the caller's permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.vfs.permissions import MAY_EXEC, MAY_WRITE, FileAttrs, may_delete

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.options import RenameOptions
    from pkg.sentry.vfs.resolving_path import ResolvingPath

# A filesystem's own kind of Dentry.
_D = TypeVar("_D", bound="Dentry")


def is_ancestor(ancestor: Dentry, d: Dentry | None) -> bool:
    """is_ancestor reports whether ancestor is d or one of d's parents in
    their filesystem."""
    while d is not None:
        if d is ancestor:
            return True
        d = d.parent_dentry()
    return False


def check_rename_targets(
    rp: ResolvingPath,
    opts: RenameOptions,
    old_parent: Dentry,
    renamed: Dentry,
    new_parent: Dentry,
    replaced: Dentry | None,
) -> None:
    """check_rename_targets checks the two names of a rename once both are
    looked up, as do_renameat2 does.

    Args:
        rp: the resolution of the new name, at its last component.
        opts: rename's options.
        old_parent: the directory renamed is in.
        renamed: the file to move.
        new_parent: the directory of the new name.
        replaced: the file at the new name, if any.

    Raises:
        SyscallError: EEXIST (RENAME_NOREPLACE), ENOENT (RENAME_EXCHANGE
            with no file to exchange with), ENOTDIR (a trailing slash on a
            file that is no directory), EINVAL (a directory moved below
            itself), ENOTEMPTY or EINVAL (replacing an ancestor of the
            source).
    """
    exchange = bool(opts.flags & F.RENAME_EXCHANGE)
    if replaced is not None and opts.flags & F.RENAME_NOREPLACE:
        raise SyscallError(errno.EEXIST)
    if exchange:
        if replaced is None:
            raise SyscallError(errno.ENOENT)
        if rp.must_be_dir() and not replaced.is_dir():
            raise SyscallError(errno.ENOTDIR)
    if not renamed.is_dir() and (
        opts.old_must_be_dir or (not exchange and rp.must_be_dir())
    ):
        raise SyscallError(errno.ENOTDIR)

    # The source must not be an ancestor of the target's directory, nor the
    # target one of the source's.
    if is_ancestor(renamed, new_parent):
        raise SyscallError(errno.EINVAL)
    if replaced is not None and is_ancestor(replaced, old_parent):
        raise SyscallError(errno.EINVAL if exchange else errno.ENOTEMPTY)


def may_rename(
    creds: Credentials,
    opts: RenameOptions,
    old_parent: _D,
    renamed: _D,
    new_parent: _D,
    replaced: _D | None,
    attrs: Callable[[_D], FileAttrs],
) -> None:
    """may_rename checks that creds may move renamed to the new name, as
    vfs_rename does: renamed's name may be removed, the new one added or
    replaced, and a directory that changes parent may have its ".."
    rewritten.

    Preconditions: check_rename_targets passed; replaced is neither renamed
    nor another name of its file.

    Args:
        creds: the caller's credentials.
        opts: rename's options.
        old_parent: the directory renamed is in.
        renamed: the file to move.
        new_parent: the directory of the new name.
        replaced: the file at the new name, if any.
        attrs: returns the attributes the filesystem keeps for a dentry.

    Raises:
        SyscallError: as may_delete; ENOENT if new_parent was removed.
    """
    exchange = bool(opts.flags & F.RENAME_EXCHANGE)
    renamed_is_dir = renamed.is_dir()
    may_delete(creds, attrs(old_parent), renamed, attrs(renamed).uid, renamed_is_dir)
    replaced_is_dir = replaced is not None and replaced.is_dir()
    if replaced is None:
        if new_parent.is_dead():
            raise SyscallError(errno.ENOENT)
        attrs(new_parent).check_permissions(creds, MAY_WRITE | MAY_EXEC)
    else:
        is_dir = replaced_is_dir if exchange else renamed_is_dir
        may_delete(creds, attrs(new_parent), replaced, attrs(replaced).uid, is_dir)

    # Moving a directory rewrites its "..".
    if new_parent is not old_parent:
        if renamed_is_dir:
            attrs(renamed).check_permissions(creds, MAY_WRITE)
        if exchange and replaced is not None and replaced_is_dir:
            attrs(replaced).check_permissions(creds, MAY_WRITE)
