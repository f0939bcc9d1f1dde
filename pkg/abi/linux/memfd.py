"""memfd_create(2) flags and file seals (include/uapi/linux/memfd.h,
include/uapi/linux/fcntl.h)."""

MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_NOEXEC_SEAL = 0x0008
MFD_EXEC = 0x0010
MFD_ALL_FLAGS = (
    MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC
)
# Huge page size encoding in the flags, with MFD_HUGETLB.
MFD_HUGE_SHIFT = 26
MFD_HUGE_MASK = 0x3F
# The longest name, without "memfd:" and the terminator.
MFD_NAME_MAX_LEN = 249

# Seals (fcntl F_ADD_SEALS / F_GET_SEALS).
F_SEAL_SEAL = 0x1
F_SEAL_SHRINK = 0x2
F_SEAL_GROW = 0x4
F_SEAL_WRITE = 0x8
F_SEAL_FUTURE_WRITE = 0x10
F_SEAL_EXEC = 0x20
F_ALL_SEALS = (
    F_SEAL_SEAL
    | F_SEAL_SHRINK
    | F_SEAL_GROW
    | F_SEAL_WRITE
    | F_SEAL_FUTURE_WRITE
    | F_SEAL_EXEC
)
