"""SyscallError, the one way a system call reports failure.

A handler raises SyscallError(errno); the dispatcher alone converts it into
the -errno return value the application sees. Restart codes (ERESTARTSYS and
friends from pkg.abi.linux.errno) are raised the same way and are resolved by
the signal delivery code before the application runs again.
"""

from pkg.abi.linux import errno as linux_errno


class SyscallError(Exception):
    """SyscallError carries the errno a system call fails with."""

    __slots__ = ("errno",)

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno

    def __str__(self) -> str:
        name = linux_errno.NAMES.get(self.errno, str(self.errno))
        return f"{name} ({linux_errno.MESSAGES.get(self.errno, 'unknown')})"


def from_os_error(e: OSError) -> SyscallError:
    """Converts a host OSError at a host boundary into a SyscallError."""
    return SyscallError(e.errno if e.errno else linux_errno.EIO)
