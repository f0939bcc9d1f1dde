"""Filesystem limits, statfs(2), extended attributes and pipes
(include/uapi/linux/limits.h, magic.h, xattr.h, asm-generic/statfs.h)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Path limits.
NAME_MAX = 255
PATH_MAX = 4096
# Symbolic links followed in one path resolution (MAXSYMLINKS).
MAXSYMLINKS = 40

# Pipes: writes of at most PIPE_BUF bytes are atomic; a new pipe holds
# PIPE_DEF_BUFFERS pages; /proc/sys/fs/pipe-max-size is the unprivileged
# ceiling of F_SETPIPE_SZ.
PIPE_BUF = 4096
PIPE_DEF_BUFFERS = 16
DEFAULT_PIPE_SIZE = PIPE_DEF_BUFFERS * 4096
PIPE_MAX_SIZE = 1 << 20

# Filesystem magic numbers (statfs f_type).
TMPFS_MAGIC = 0x01021994
PIPEFS_MAGIC = 0x50495045
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
DEVPTS_SUPER_MAGIC = 0x1CD1
OVERLAYFS_SUPER_MAGIC = 0x794C7630
ANON_INODE_FS_MAGIC = 0x09041934
SOCKFS_MAGIC = 0x534F434B
V9FS_MAGIC = 0x01021997
EXT4_SUPER_MAGIC = 0xEF53

# statfs f_flags (ST_*).
ST_RDONLY = 0x0001
ST_NOSUID = 0x0002
ST_NODEV = 0x0004
ST_NOEXEC = 0x0008
ST_SYNCHRONOUS = 0x0010
ST_VALID = 0x0020
ST_MANDLOCK = 0x0040
ST_NOATIME = 0x0400
ST_NODIRATIME = 0x0800
ST_RELATIME = 0x1000
ST_NOSYMFOLLOW = 0x2000

# struct statfs on x86-64: type, bsize, blocks, bfree, bavail, files, ffree,
# fsid[2], namelen, frsize, flags, spare[4].
_STATFS = struct.Struct("<qqQQQQQiiqqq32x")
STATFS_SIZE = _STATFS.size


@dataclass(frozen=True, slots=True)
class Statfs:
    """Statfs is what statfs(2) reports about a filesystem."""

    type: int
    block_size: int = 4096
    blocks: int = 0
    blocks_free: int = 0
    blocks_available: int = 0
    files: int = 0
    files_free: int = 0
    fsid: tuple[int, int] = (0, 0)
    name_length: int = NAME_MAX
    fragment_size: int = 4096
    flags: int = 0

    def pack(self) -> bytes:
        """Returns the x86-64 `struct statfs`."""
        return _STATFS.pack(
            self.type,
            self.block_size,
            self.blocks,
            self.blocks_free,
            self.blocks_available,
            self.files,
            self.files_free,
            self.fsid[0],
            self.fsid[1],
            self.name_length,
            self.fragment_size,
            self.flags,
        )


# Extended attributes.
XATTR_CREATE = 0x1
XATTR_REPLACE = 0x2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 1 << 16
XATTR_LIST_MAX = 1 << 16
XATTR_USER_PREFIX = b"user."
XATTR_TRUSTED_PREFIX = b"trusted."
XATTR_SECURITY_PREFIX = b"security."
XATTR_SYSTEM_PREFIX = b"system."

# A whiteout, as overlayfs and RENAME_WHITEOUT make it: a character device
# with device number 0/0.
WHITEOUT_MODE = 0o020000
WHITEOUT_DEV = 0
