"""HostTTY: the host terminal a container was started on, as the
controlling terminal of the sessions in the sandbox.

The host kernel keeps the terminal's attributes (termios and window size
requests are forwarded to it), but the sandbox's sessions and process
groups exist only in the sentry: which of them is in the foreground, and
who stops for touching the terminal from the background, is decided here
(tty_jobctrl.py), as gVisor's host TTY does. One HostTTY stands for one
host terminal device in one kernel.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from pkg.sentry.kernel.tty_jobctrl import JobControlTTY

if TYPE_CHECKING:
    from collections.abc import Callable

    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription

_mu = threading.Lock()
_ttys: weakref.WeakKeyDictionary[Kernel, dict[int, HostTTY]] = (
    weakref.WeakKeyDictionary()
)


class HostTTY(JobControlTTY):
    """HostTTY is the job-control state of one host terminal.

    Attributes:
        host_fd: a descriptor of the terminal the HostTTY owns, from which
            /dev/tty opens it again.
    """

    def __init__(
        self,
        kernel: Kernel,
        host_fd: int,
        make_file: Callable[[int, int], FileDescription],
    ) -> None:
        super().__init__(kernel)
        self.host_fd = host_fd
        self._make_file = make_file

    def open_tty(
        self, t: Task | None, vd: VirtualDentry, flags: int
    ) -> FileDescription:
        """Opens the terminal for /dev/tty: a new host descriptor of it
        (sharing the host's open file, as HostFile.reopen does)."""
        return self._make_file(os.dup(self.host_fd), flags)


def host_tty(
    kernel: Kernel, host_fd: int, make_file: Callable[[int, int], FileDescription]
) -> HostTTY:
    """Returns the HostTTY of the terminal host_fd refers to, made on first
    use with a descriptor of its own; make_file(fd, flags) makes the files
    /dev/tty opens."""
    rdev = os.fstat(host_fd).st_rdev
    with _mu:
        ttys = _ttys.setdefault(kernel, {})
        tty = ttys.get(rdev)
        if tty is None:
            tty = HostTTY(kernel, os.dup(host_fd), make_file)
            ttys[rdev] = tty
        return tty
