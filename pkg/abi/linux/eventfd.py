"""eventfd(2) flags and limits (include/uapi/linux/eventfd.h,
fs/eventfd.c)."""

EFD_SEMAPHORE = 0o1
EFD_CLOEXEC = 0o2000000
EFD_NONBLOCK = 0o4000
EFD_SHARED_FCNTL_FLAGS = EFD_CLOEXEC | EFD_NONBLOCK
EFD_FLAGS_SET = EFD_SHARED_FCNTL_FLAGS | EFD_SEMAPHORE

# The counter never exceeds this: ULLONG_MAX is reserved for errors.
EVENTFD_MAX = 0xFFFF_FFFF_FFFF_FFFE
