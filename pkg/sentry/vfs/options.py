"""Option records passed from the VFS to filesystem implementations."""

from __future__ import annotations

from dataclasses import dataclass

from pkg.abi.linux.stat import UTIME_NOW, UTIME_OMIT

# Re-exported: SetStatOptions timestamps use these special values.
__all__ = [
    "UTIME_NOW",
    "UTIME_OMIT",
    "GetDentryOptions",
    "MkdirOptions",
    "MknodOptions",
    "OpenOptions",
    "RenameOptions",
    "SetStatOptions",
    "SetXattrOptions",
]


@dataclass(frozen=True, slots=True)
class OpenOptions:
    """OpenOptions are open(2)'s flags and creation mode.

    Attributes:
        flags: O_* flags as the application passed them (O_CLOEXEC
            included; it is the descriptor's, not the file's).
        mode: the creation mode with the umask already applied.
        for_exec: the open is execve's: it needs execute permission on a
            regular file instead of read permission.
    """

    flags: int
    mode: int = 0
    for_exec: bool = False


@dataclass(frozen=True, slots=True)
class GetDentryOptions:
    """GetDentryOptions tune get_dentry_at.

    Attributes:
        check_search_dir: the result must be a directory the caller may
            search (chdir(2), chroot(2)): ENOTDIR or EACCES otherwise.
    """

    check_search_dir: bool = False


@dataclass(frozen=True, slots=True)
class MkdirOptions:
    """MkdirOptions: the mode (permission bits, umask applied)."""

    mode: int


@dataclass(frozen=True, slots=True)
class MknodOptions:
    """MknodOptions: the mode (file type and permission bits, umask
    applied), the device number for device nodes, and the endpoint for a
    Unix socket bound to a path."""

    mode: int
    dev_major: int = 0
    dev_minor: int = 0
    endpoint: object = None


@dataclass(frozen=True, slots=True)
class RenameOptions:
    """RenameOptions: renameat2(2)'s RENAME_* flags, and whether the old
    path ended with a slash (set by the VFS)."""

    flags: int = 0
    old_must_be_dir: bool = False


@dataclass(frozen=True, slots=True)
class SetXattrOptions:
    """SetXattrOptions: setxattr(2)'s name, value and XATTR_* flags."""

    name: bytes
    value: bytes
    flags: int = 0


@dataclass(frozen=True, slots=True)
class SetStatOptions:
    """SetStatOptions: which attributes to change (STATX_* bits in mask)
    and their new values.

    Timestamps are nanoseconds since the epoch, or UTIME_NOW. uid and gid
    of -1 leave the owner as it is (chown's convention) even when their bit
    is set.
    """

    mask: int
    mode: int = 0
    uid: int = -1
    gid: int = -1
    size: int = 0
    atime_ns: int = UTIME_OMIT
    mtime_ns: int = UTIME_OMIT
