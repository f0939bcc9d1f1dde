"""process_vm_readv(2) and process_vm_writev(2) between sandboxed processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_PTRACE
from pkg.sentry.syscalls.linux.sys_read_write import read_iovecs
from pkg.sentry.syscalls.syscall import Args, full, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.memory_manager import MemoryManager

# Bytes moved per step, so a huge request does not buffer all of it.
_CHUNK = 1 << 20


def _target_mm(t: Task, pid: int) -> MemoryManager:
    """Returns the address space of task pid if t may access it
    (mm_access with PTRACE_MODE_ATTACH_REALCREDS)."""
    tasks = t.kernel.tasks
    with tasks.mu:
        target = tasks.tasks.get(pid) if pid > 0 else None
    if target is None or target.mm is None or target.mm.users <= 0:
        raise SyscallError(errno.ESRCH)
    if target.tg is t.tg:
        return target.mm
    c, tc = t.creds, target.creds
    same_ids = (
        c.ruid == tc.ruid == tc.euid == tc.suid
        and c.rgid == tc.rgid == tc.egid == tc.sgid
    )
    if not same_ids and not c.has_capability(CAP_SYS_PTRACE):
        raise SyscallError(errno.EPERM)
    return target.mm


def _process_vm_rw(t: Task, args: Args, write: bool) -> int:
    pid, lvec, liovcnt, rvec, riovcnt, flags = args
    pid = s32(pid)
    if flags:
        raise SyscallError(errno.EINVAL)
    local = read_iovecs(t, lvec, liovcnt)
    if sum(n for _, n in local) == 0:
        return 0
    remote = read_iovecs(t, rvec, riovcnt)
    mm = _target_mm(t, pid)

    # Walk both vectors in step; stop at the first short transfer.
    total = 0
    li = 0
    loff = 0
    for raddr, rlen in remote:
        roff = 0
        while roff < rlen and li < len(local):
            laddr, llen = local[li]
            if loff == llen:
                li += 1
                loff = 0
                continue
            n = min(rlen - roff, llen - loff, _CHUNK)
            if write:
                data = t.mm.copy_in_partial(laddr + loff, n)
                done = mm.copy_out_partial(raddr + roff, data) if data else 0
            else:
                data = mm.copy_in_partial(raddr + roff, n)
                done = t.mm.copy_out_partial(laddr + loff, data) if data else 0
            total += done
            if done < n:
                if total:
                    return total
                raise SyscallError(errno.EFAULT)
            roff += n
            loff += n
        if li >= len(local):
            break
    return total


def sys_process_vm_readv(t: Task, args: Args) -> int:
    """process_vm_readv(2)."""
    return _process_vm_rw(t, args, False)


def sys_process_vm_writev(t: Task, args: Args) -> int:
    """process_vm_writev(2)."""
    return _process_vm_rw(t, args, True)


ENTRIES = [
    full(N.SYS_process_vm_readv, "process_vm_readv", sys_process_vm_readv),
    full(N.SYS_process_vm_writev, "process_vm_writev", sys_process_vm_writev),
]
