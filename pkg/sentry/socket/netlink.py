"""Netlink (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.socket.socket import SocketFD


def new_netlink_socket(t: Task, stype: int, protocol: int, flags: int) -> SocketFD:
    """Makes an AF_NETLINK socket."""
    raise SyscallError(errno.EAFNOSUPPORT)
