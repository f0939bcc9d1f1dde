"""/proc/[pid]/mem: a process's memory as a file (fs/proc/base.c mem_rw)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import DataInode
from pkg.sentry.fsimpl.proc.task_files import TaskInode, TaskRef, may_access

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


class MemFile(TaskInode, DataInode):
    """MemFile is /proc/pid/mem: the process's memory at file offsets equal
    to addresses (mem_rw). Owner-only, and only for a task that may
    inspect it. Reads and writes go through the protection as ptrace's do
    (FOLL_FORCE): a debugger may patch read-only code, the write landing in
    a private copy of the page; shared mappings without write permission
    stay refused.

    Unlike Linux, which checks access when the file is opened and keeps
    that address space, the check and the address space are the task's at
    each read or write."""

    __slots__ = ("ref",)

    def __init__(self, ref: TaskRef) -> None:
        DataInode.__init__(self, 0o600)
        self.ref = ref

    def pread(self, t: Task, length: int, offset: int) -> bytes | None:
        if not may_access(t.creds, self.ref):
            raise SyscallError(errno.EACCES)
        mm = self.ref.thread().mm
        if mm is None:
            return b""
        length = min(length, 1 << 20)
        try:
            data = mm.copy_in_partial(offset, length, force=True)
        except SyscallError:
            data = b""
        if not data and length:
            raise SyscallError(errno.EIO)
        return data

    def write(self, t: Task, data: bytes, offset: int) -> int:
        if not may_access(t.creds, self.ref):
            raise SyscallError(errno.EACCES)
        mm = self.ref.thread().mm
        if mm is None:
            return 0
        # A partial write reports what was written; nothing at all is EIO
        # (mem_rw).
        try:
            n = mm.copy_out_partial(offset, data, force=True)
        except SyscallError:
            n = 0
        if n == 0 and data:
            raise SyscallError(errno.EIO)
        return n

    def seekable_end(self) -> bool:
        return False
