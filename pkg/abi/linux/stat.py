"""File modes, stat(2) and statx(2) (include/uapi/linux/stat.h,
arch/x86/include/uapi/asm/stat.h).

Statx is the one value object every filesystem returns for a file's
attributes; the syscall layer packs it as `struct stat` or `struct statx`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

# File types, the S_IFMT bits of a mode.
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

# Permission bits.
S_ISUID = 0o4000
S_ISGID = 0o2000
S_ISVTX = 0o1000
S_IRWXU = 0o700
S_IRUSR = 0o400
S_IWUSR = 0o200
S_IXUSR = 0o100
S_IRWXG = 0o070
S_IRGRP = 0o040
S_IWGRP = 0o020
S_IXGRP = 0o010
S_IRWXO = 0o007
S_IROTH = 0o004
S_IWOTH = 0o002
S_IXOTH = 0o001
# Every permission bit, what chmod(2) may set (S_IALLUGO).
S_IALLUGO = 0o7777
# The bits a regular permission check reads.
S_IRWXUGO = 0o777


def S_ISDIR(mode: int) -> bool:
    """Reports whether mode is a directory's."""
    return mode & S_IFMT == S_IFDIR


def S_ISREG(mode: int) -> bool:
    """Reports whether mode is a regular file's."""
    return mode & S_IFMT == S_IFREG


def S_ISLNK(mode: int) -> bool:
    """Reports whether mode is a symbolic link's."""
    return mode & S_IFMT == S_IFLNK


# Directory entry types (d_type of getdents64), DT_* = S_IF* >> 12.
DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12
DT_WHT = 14


def dirent_type(mode: int) -> int:
    """Returns the DT_* value for a file mode."""
    return (mode & S_IFMT) >> 12


# statx(2) mask bits.
STATX_TYPE = 0x1
STATX_MODE = 0x2
STATX_NLINK = 0x4
STATX_UID = 0x8
STATX_GID = 0x10
STATX_ATIME = 0x20
STATX_MTIME = 0x40
STATX_CTIME = 0x80
STATX_INO = 0x100
STATX_SIZE = 0x200
STATX_BLOCKS = 0x400
STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
STATX_MNT_ID = 0x1000
STATX_DIOALIGN = 0x2000
STATX_MNT_ID_UNIQUE = 0x4000
STATX_ALL = 0xFFF
# Reserved for future struct statx expansion; statx fails with EINVAL.
STATX__RESERVED = 0x80000000

# statx(2) attributes.
STATX_ATTR_COMPRESSED = 0x4
STATX_ATTR_IMMUTABLE = 0x10
STATX_ATTR_APPEND = 0x20
STATX_ATTR_NODUMP = 0x40
STATX_ATTR_ENCRYPTED = 0x800
STATX_ATTR_AUTOMOUNT = 0x1000
STATX_ATTR_MOUNT_ROOT = 0x2000
STATX_ATTR_VERITY = 0x100000
STATX_ATTR_DAX = 0x200000

# statx(2) flags beyond the AT_* path flags.
AT_STATX_SYNC_AS_STAT = 0x0000
AT_STATX_FORCE_SYNC = 0x2000
AT_STATX_DONT_SYNC = 0x4000

# utimensat(2) special nanosecond values.
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

NSEC_PER_SEC = 1_000_000_000

# struct stat on x86-64: dev, ino, nlink, mode, uid, gid, pad, rdev, size,
# blksize, blocks, atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns,
# reserved[3].
_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")
STAT_SIZE = _STAT.size

# struct statx: mask, blksize, attributes, nlink, uid, gid, mode, pad, ino,
# size, blocks, attributes_mask, atime/btime/ctime/mtime (s64 sec, u32 nsec,
# s32 pad), rdev major/minor, dev major/minor, mnt_id, dio_mem_align,
# dio_offset_align, spare.
_STATX = struct.Struct("<IIQIIIH2xQQQQqI4xqI4xqI4xqI4xIIIIQII")
STATX_SIZE = 256


def make_dev(major: int, minor: int) -> int:
    """Encodes a device number as the kernel's new_encode_dev does."""
    return (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~0xFF) << 12)


def dev_major(dev: int) -> int:
    """The major number of an encoded device number."""
    return (dev >> 8) & 0xFFF


def dev_minor(dev: int) -> int:
    """The minor number of an encoded device number."""
    return (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


@dataclass(frozen=True, slots=True)
class Statx:
    """Statx is a file's attributes, as struct statx holds them.

    Timestamps are nanoseconds since the epoch. Fields not in mask are
    unspecified.
    """

    mask: int = STATX_BASIC_STATS
    blksize: int = 4096
    attributes: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    mode: int = 0
    ino: int = 0
    size: int = 0
    blocks: int = 0
    attributes_mask: int = 0
    atime_ns: int = 0
    btime_ns: int = 0
    ctime_ns: int = 0
    mtime_ns: int = 0
    rdev_major: int = 0
    rdev_minor: int = 0
    dev_major: int = 0
    dev_minor: int = 0
    mnt_id: int = 0

    def pack_stat(self) -> bytes:
        """Returns the x86-64 `struct stat` for these attributes."""
        return _STAT.pack(
            make_dev(self.dev_major, self.dev_minor),
            self.ino,
            self.nlink,
            self.mode,
            self.uid,
            self.gid,
            0,
            make_dev(self.rdev_major, self.rdev_minor),
            self.size,
            self.blksize,
            self.blocks,
            *_split(self.atime_ns),
            *_split(self.mtime_ns),
            *_split(self.ctime_ns),
        )

    def pack_statx(self) -> bytes:
        """Returns the `struct statx` for these attributes."""
        data = _STATX.pack(
            self.mask,
            self.blksize,
            self.attributes,
            self.nlink,
            self.uid,
            self.gid,
            self.mode & 0xFFFF,
            self.ino,
            self.size,
            self.blocks,
            self.attributes_mask,
            *_split(self.atime_ns),
            *_split(self.btime_ns),
            *_split(self.ctime_ns),
            *_split(self.mtime_ns),
            self.rdev_major,
            self.rdev_minor,
            self.dev_major,
            self.dev_minor,
            self.mnt_id,
            0,
            0,
        )
        return data + bytes(STATX_SIZE - len(data))


def _split(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, NSEC_PER_SEC)
    return sec, nsec


def statx_from_host(st: os.stat_result, dev_major: int, dev_minor: int) -> Statx:
    """statx_from_host returns the basic attributes of a host file, as the
    host's stat(2) reported them, on the device number the sandbox shows.

    Args:
        st: the host's answer.
        dev_major, dev_minor: the device number to report.
    """
    return Statx(
        mask=STATX_BASIC_STATS,
        blksize=st.st_blksize,
        nlink=st.st_nlink,
        uid=st.st_uid,
        gid=st.st_gid,
        mode=st.st_mode,
        ino=st.st_ino,
        size=st.st_size,
        blocks=st.st_blocks,
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        rdev_major=os.major(st.st_rdev),
        rdev_minor=os.minor(st.st_rdev),
        dev_major=dev_major,
        dev_minor=dev_minor,
    )
