"""poll(2) and select(2) constants (include/uapi/asm-generic/poll.h,
include/uapi/linux/eventpoll.h, include/linux/poll.h, fs/select.c)."""

POLLIN = 0x0001
POLLPRI = 0x0002
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
POLLNVAL = 0x0020
POLLRDNORM = 0x0040
POLLRDBAND = 0x0080
POLLWRNORM = 0x0100
POLLWRBAND = 0x0200
POLLMSG = 0x0400
POLLREMOVE = 0x1000
POLLRDHUP = 0x2000

# What a file without a poll operation reports (DEFAULT_POLLMASK).
DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM

# struct pollfd: int fd; short events; short revents.
POLLFD_SIZE = 8

# The events that make a descriptor count in each select(2) set.
POLLIN_SET = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR | POLLNVAL
POLLOUT_SET = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR | POLLNVAL
POLLEX_SET = POLLPRI | POLLNVAL

# Bits in one word of an fd_set.
NFDBITS = 64
# The smallest descriptor table Linux allocates (NR_OPEN_DEFAULT).
NR_OPEN_DEFAULT = 64
