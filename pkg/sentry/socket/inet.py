"""Loopback TCP and UDP (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.socket.socket import SocketFD


def new_inet_socket(
    t: Task, family: int, stype: int, protocol: int, flags: int
) -> SocketFD:
    """Makes an AF_INET or AF_INET6 socket."""
    raise SyscallError(errno.EAFNOSUPPORT)
