"""System call dispatch: from a syscall stop to the return register.

The dispatcher reads the number and arguments from the task's registers,
looks the handler up in the syscall table, runs it, and writes the result.
A SyscallError becomes -errno here and nowhere else; any other exception is a
sentry bug and propagates to the run loop, which stops the sandbox.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux.sysno import NAMES as SYSCALL_NAMES
from pkg.errors.syscall_error import SyscallError
from pkg.platform.platform import ORIG_RAX, R8, R9, R10, RAX, RDI, RDX, RSI
from pkg.sentry.kernel.seccomp import check_syscall
from pkg.sentry.kernel.task_signals import is_restart_code

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
_ERRNO_MAX = 4095

# Unknown system calls are logged at most this often per number.
_UNKNOWN_LOG_INTERVAL = 10.0
_unknown_last_logged: dict[int, float] = {}
unknown_counts: dict[int, int] = {}


def _unknown(t: Task, sysno: int) -> int:
    unknown_counts[sysno] = unknown_counts.get(sysno, 0) + 1
    now = time.monotonic()
    if (
        now - _unknown_last_logged.get(sysno, -_UNKNOWN_LOG_INTERVAL)
        >= _UNKNOWN_LOG_INTERVAL
    ):
        _unknown_last_logged[sysno] = now
        log.warning(
            "syscalls: tid=%d unsupported syscall sysno=%d (%s), returning ENOSYS "
            "(seen %d times)",
            t.tid,
            sysno,
            SYSCALL_NAMES.get(sysno, "unknown"),
            unknown_counts[sysno],
        )
    return -errno.ENOSYS


def dispatch(t: Task) -> None:
    """Runs the system call the task stopped at and sets its return value."""
    regs = t.state.regs
    sysno = regs[ORIG_RAX]
    t.last_syscall = sysno
    if t.seccomp_mode:
        # The application's own seccomp filters run before anything else.
        skipped = check_syscall(t, sysno)
        if skipped is not None:
            regs[RAX] = skipped & _MASK64
            return
        # A tracer may have changed the call at PTRACE_EVENT_SECCOMP.
        sysno = regs[ORIG_RAX]
    table = t.kernel.syscall_table
    entry = table[sysno] if sysno < len(table) else None
    if entry is None:
        ret = _unknown(t, sysno)
    else:
        try:
            ret = entry.fn(
                t, (regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8], regs[R9])
            )
        except SyscallError as e:
            ret = -e.errno
    if -_ERRNO_MAX <= ret < 0 and is_restart_code(ret):
        # The run loop resolves the restart before returning to the app.
        t.syscall_restart = -ret
        t.interrupted = True
    regs[RAX] = ret & _MASK64


def dispatch_traced(t: Task) -> None:
    """dispatch with --strace: logs an enter and an exit line per call."""
    strace = t.kernel.strace
    regs = t.state.regs
    sysno = regs[ORIG_RAX]
    if not strace.wants(sysno):
        dispatch(t)
        return
    args = (regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8], regs[R9])
    strace.enter(t, sysno, args)
    start = time.monotonic()
    dispatch(t)
    ret = regs[RAX]
    strace.exit(
        t, sysno, args, ret - (1 << 64) if ret >> 63 else ret, time.monotonic() - start
    )
