"""signalfd(2) and signalfd4(2). The file is pkg/sentry/fsimpl/signalfd."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import signalfd as SFD
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.signalfd.signalfd import SignalFD, new_signalfd
from pkg.sentry.syscalls.linux.sys_file import fd_limit
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def _signalfd4(t: Task, fd: int, mask_addr: int, size: int, flags: int) -> int:
    if size != S.SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    mask = t.mm.read_u64(mask_addr)
    if flags & ~(SFD.SFD_CLOEXEC | SFD.SFD_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    mask &= ~S.UNBLOCKABLE_MASK
    if fd == -1:
        f = new_signalfd(t, mask, flags)
        try:
            return t.fd_table.new_fd(f, bool(flags & SFD.SFD_CLOEXEC), 0, fd_limit(t))
        except SyscallError:
            f.dec_ref()
            raise
    f = t.fd_table.get(fd)
    if not isinstance(f, SignalFD):
        raise SyscallError(errno.EINVAL)
    f.set_mask(t, mask)
    return fd


def sys_signalfd4(t: Task, args: Args) -> int:
    """signalfd4(2): creates a signalfd (fd -1) or changes the mask of one."""
    return _signalfd4(t, s32(args[0]), args[1], args[2], s32(args[3]))


def sys_signalfd(t: Task, args: Args) -> int:
    """signalfd(2): signalfd4 without flags."""
    return _signalfd4(t, s32(args[0]), args[1], args[2], 0)


ENTRIES = [
    full(N.SYS_signalfd, "signalfd", sys_signalfd),
    full(N.SYS_signalfd4, "signalfd4", sys_signalfd4),
]
