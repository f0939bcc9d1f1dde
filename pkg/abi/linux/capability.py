"""Capabilities (include/uapi/linux/capability.h)."""

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_LINUX_IMMUTABLE = 9
CAP_NET_BIND_SERVICE = 10
CAP_NET_BROADCAST = 11
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
CAP_IPC_OWNER = 15
CAP_SYS_MODULE = 16
CAP_SYS_RAWIO = 17
CAP_SYS_CHROOT = 18
CAP_SYS_PTRACE = 19
CAP_SYS_PACCT = 20
CAP_SYS_ADMIN = 21
CAP_SYS_BOOT = 22
CAP_SYS_NICE = 23
CAP_SYS_RESOURCE = 24
CAP_SYS_TIME = 25
CAP_SYS_TTY_CONFIG = 26
CAP_MKNOD = 27
CAP_LEASE = 28
CAP_AUDIT_WRITE = 29
CAP_AUDIT_CONTROL = 30
CAP_SETFCAP = 31
CAP_MAC_OVERRIDE = 32
CAP_MAC_ADMIN = 33
CAP_SYSLOG = 34
CAP_WAKE_ALARM = 35
CAP_BLOCK_SUSPEND = 36
CAP_AUDIT_READ = 37
CAP_PERFMON = 38
CAP_BPF = 39
CAP_CHECKPOINT_RESTORE = 40
CAP_LAST_CAP = CAP_CHECKPOINT_RESTORE

# File capabilities (security.capability, struct vfs_cap_data and
# vfs_ns_cap_data): the revision in magic_etc, and each revision's size.
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
XATTR_CAPS_SZ_2 = 20
XATTR_CAPS_SZ_3 = 24

# capget/capset header versions.
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Every capability by its name, as OCI specs and capabilities(7) spell it.
BY_NAME: dict[str, int] = {
    name: value
    for name, value in globals().items()
    if name.startswith("CAP_") and name != "CAP_LAST_CAP" and isinstance(value, int)
}
NAMES: dict[int, str] = {value: name for name, value in BY_NAME.items()}
