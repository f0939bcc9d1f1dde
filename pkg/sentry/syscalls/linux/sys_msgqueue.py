"""System V message queues: msgget(2), msgsnd(2), msgrcv(2), msgctl(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.syscalls.syscall import Args, full, s32, s64

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def sys_msgget(t: Task, args: Args) -> int:
    """msgget(2)."""
    return ipc_of(t).msg.get(t.creds, s32(args[0]), s32(args[1]))


def sys_msgsnd(t: Task, args: Args) -> int:
    """msgsnd(2)."""
    ident, msgp, size, flags = s32(args[0]), args[1], s64(args[2]), s32(args[3])
    # The checks in ksys_msgsnd and do_msgsnd's order.
    mtype = s64(t.mm.read_u64(msgp))
    msg = ipc_of(t).msg
    if size > msg.msgmax or size < 0 or ident < 0:
        raise SyscallError(errno.EINVAL)
    if mtype < 1:
        raise SyscallError(errno.EINVAL)
    text = t.copy_in(msgp + 8, size) if size else b""
    msg.send(t, ident, mtype, text, flags)
    return 0


def sys_msgrcv(t: Task, args: Args) -> int:
    """msgrcv(2)."""
    ident, msgp, size, want = s32(args[0]), args[1], s64(args[2]), s64(args[3])
    flags = s32(args[4])
    if ident < 0 or size < 0:
        raise SyscallError(errno.EINVAL)
    if flags & I.MSG_COPY:
        size = min(size, ipc_of(t).msg.msgmax)
    mtype, text = ipc_of(t).msg.receive(t, ident, size, want, flags)
    # A message that cannot be copied out is lost, as in Linux.
    t.mm.write_u64(msgp, mtype & (1 << 64) - 1)
    if text:
        t.copy_out(msgp + 8, text)
    return len(text)


def sys_msgctl(t: Task, args: Args) -> int:
    """msgctl(2)."""
    return ipc_of(t).msg.ctl(t, s32(args[0]), s32(args[1]), args[2])


ENTRIES = [
    full(N.SYS_msgget, "msgget", sys_msgget),
    full(N.SYS_msgsnd, "msgsnd", sys_msgsnd),
    full(N.SYS_msgrcv, "msgrcv", sys_msgrcv),
    full(N.SYS_msgctl, "msgctl", sys_msgctl),
]
