"""Task: one application thread (struct task_struct).

Each Task runs on its own host thread (see task_run.py). It is the only
thread that touches its platform Context and register State; other threads
reach it through `interrupt`, which makes a running switch or a blocked wait
return so that the task notices pending signals, stops or exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.cputime import TaskCPU
from pkg.sentry.kernel.credentials import Credentials
from pkg.sentry.kernel.sched_stats import TaskIO
from pkg.sentry.kernel.signals import PendingSignals
from pkg.sentry.kernel.task_sched import ALL_CPUS, SchedParams

if TYPE_CHECKING:
    from collections.abc import Callable

    from pkg.platform.platform import Context, State
    from pkg.sentry.kernel.fd_table import FDTable
    from pkg.sentry.kernel.fs_context import FSContext
    from pkg.sentry.kernel.ipc.namespace import IPCNamespace
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.ptrace import PtraceExit, TraceeState
    from pkg.sentry.kernel.seccomp import SeccompFilter
    from pkg.sentry.kernel.thread_group import ThreadGroup
    from pkg.sentry.kernel.uts_namespace import UTSNamespace
    from pkg.sentry.mm.memory_manager import MemoryManager
    from pkg.sentry.mm.mempolicy import MemPolicy

log = logging.getLogger(__name__)

_POLLIN = select.POLLIN
# The longest wait select.poll takes (its timeout is a C int of ms).
_MAX_POLL_MS = 2**31 - 1

# The Task each task thread runs, for code that has no task argument (the
# readiness of a signalfd is the polling task's, as with Linux's current).
_current = threading.local()


def current_task() -> Task | None:
    """Returns the Task whose host thread is calling, or None."""
    return getattr(_current, "task", None)


def set_current_task(t: Task) -> None:
    """Records t as the task of the calling host thread (its run loop)."""
    _current.task = t


class Task:
    """Task is one thread of application code and its kernel state."""

    __slots__ = (
        "altstack",
        "clear_child_tid",
        "context",
        "cpu",
        "creds",
        "exit_status",
        "exiting",
        "fd_table",
        "fs",
        "interrupted",
        "ioac",
        "ipc_ns",
        "kernel",
        "last_syscall",
        "mempolicy",
        "mm",
        "name",
        "pdeath_signal",
        "pending",
        "personality",
        "ptrace",
        "ptrace_exits",
        "real_blocked",
        "restart_block",
        "robust_list",
        "saved_mask",
        "sched",
        "seccomp_filter",
        "seccomp_mode",
        "signal_mask",
        "start_ns",
        "state",
        "stop_pending",
        "stopped",
        "syscall_restart",
        "tg",
        "tid",
        "tracees",
        "uts_ns",
        "vfork_done",
        "wake_fd",
    )

    def __init__(
        self,
        kernel: Kernel,
        tid: int,
        tg: ThreadGroup,
        mm: MemoryManager,
        fd_table: FDTable,
        fs: FSContext,
        creds: Credentials,
        state: State,
        name: bytes,
    ) -> None:
        self.kernel = kernel
        self.tid = tid
        self.tg = tg
        self.mm = mm
        self.fd_table = fd_table
        self.fs = fs
        self.creds = creds
        self.state = state
        # comm: at most 15 bytes (TASK_COMM_LEN), any but NUL, as the
        # application set them (PR_SET_NAME, /proc/pid/comm).
        self.name = name[:15]
        self.context: Context | None = None
        # Signals sent to this thread, and the ones it blocks (signal lock).
        self.pending = PendingSignals()
        self.signal_mask = 0
        # The mask to restore after a handler runs (sigsuspend, ppoll...).
        self.saved_mask: int | None = None
        # Signals blocked before rt_sigtimedwait unblocked those it awaits:
        # still "blocked" for deciding whether an ignored signal is dropped.
        self.real_blocked = 0
        # Job control (signal lock): `stop_pending`, the task must take part
        # in a group stop; `stopped`, it has and waits for SIGCONT.
        self.stop_pending = False
        self.stopped = False
        # (ss_sp, ss_flags, ss_size) of sigaltstack.
        self.altstack = (0, 2, 0)
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        # There is work for the run loop: a signal, a stop or an exit. Set
        # under the signal lock, read without it.
        self.interrupted = False
        # The number of the last system call, for restart and /proc.
        self.last_syscall = -1
        # The restart code (ERESTARTSYS...) the last system call returned,
        # for the run loop to resolve before the application runs again.
        self.syscall_restart = 0
        # What restart_syscall(2) runs after ERESTART_RESTARTBLOCK: a
        # function of the task returning the call's result.
        self.restart_block: Callable[[Task], int] | None = None
        # Application CPU time accounting (cputime.py).
        self.cpu = TaskCPU()
        # /proc/pid/io's counters (sched_stats.py).
        self.ioac = TaskIO()
        # seccomp(2): the mode and the newest filter of the chain
        # (seccomp.py). Inherited by clone, kept across execve.
        self.seccomp_mode = 0
        self.seccomp_filter: SeccompFilter | None = None
        self.exit_status = 0
        # The task has been asked to exit (exit(2) or a group exit).
        self.exiting = False
        # Written by wake() to end a block().
        self.wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        # Process-level attributes kept per task as Linux does: the signal
        # sent when the parent thread exits (PR_SET_PDEATHSIG) and the
        # execution domain (personality(2)).
        self.pdeath_signal = 0
        self.personality = 0
        self.sched = SchedParams(ALL_CPUS)
        # The NUMA policy set_mempolicy(2) set, None for the default; kept
        # across fork and execve.
        self.mempolicy: MemPolicy | None = None
        # CLOCK_MONOTONIC when the task was created, in nanoseconds.
        self.start_ns = time.monotonic_ns()
        # For a vfork child: released when it execs or exits (task_clone).
        self.vfork_done: object | None = None
        # Host and domain name: None for the kernel's initial namespace
        # (uts_namespace.uts_of); CLONE_NEWUTS gives a task its own.
        self.uts_ns: UTSNamespace | None = None
        # ptrace (ptrace.py, Kernel.tasks.mu): this task's tracer link or
        # None; the tasks it traces; exits of tracees it has to wait for.
        self.ptrace: TraceeState | None = None
        self.tracees: list[Task] = []
        self.ptrace_exits: list[PtraceExit] = []
        # System V IPC and POSIX message queues: None for the kernel's
        # initial namespace (ipc/namespace.py ipc_of); CLONE_NEWIPC gives a
        # task its own.
        self.ipc_ns: IPCNamespace | None = None

    def __repr__(self) -> str:
        return f"Task(tid={self.tid}, name={self.name!r})"

    @property
    def pid(self) -> int:
        """The thread group id, what getpid returns."""
        return self.tg.tgid

    # Waking and interrupting.

    def wake(self) -> None:
        """Ends a current or the next block() of this task."""
        os.eventfd_write(self.wake_fd, 1)

    def interrupt(self) -> None:
        """Tells the task there is work for its run loop.

        Callable from any thread. A task running application code is stopped
        by its platform context; a blocked task is woken.
        """
        self.interrupted = True
        os.eventfd_write(self.wake_fd, 1)
        ctx = self.context
        if ctx is not None:
            ctx.interrupt()

    def block(
        self,
        deadline: float | None = None,
        host_fds: tuple[tuple[int, int], ...] = (),
    ) -> list[tuple[int, int]]:
        """Sleeps until woken, interrupted, the deadline, or a host event.

        Args:
            deadline: a time.monotonic() value, or None to wait forever.
            host_fds: (fd, poll events) pairs of host descriptors to watch.

        Returns:
            The (fd, revents) pairs of host descriptors that became ready.

        Raises:
            SyscallError: ERESTARTSYS if the task was interrupted, ETIMEDOUT
                when the deadline passed.
        """
        if self.interrupted:
            raise SyscallError(errno.ERESTARTSYS)
        p = select.poll()
        p.register(self.wake_fd, _POLLIN)
        for fd, events in host_fds:
            p.register(fd, events)
        # A wait is a voluntary context switch (sched_stats.py).
        cpu = self.cpu
        cpu.nvcsw += 1
        cpu.waiting = True
        try:
            while True:
                if deadline is None:
                    timeout = None
                else:
                    # poll(2) takes an int of milliseconds: a farther
                    # deadline is waited for in steps.
                    remaining = max(0.0, deadline - time.monotonic()) * 1000
                    timeout = min(remaining, _MAX_POLL_MS)
                ready = p.poll(timeout)
                if ready or timeout is None or timeout < _MAX_POLL_MS:
                    break
        finally:
            cpu.waiting = False
        host_ready = []
        for fd, revents in ready:
            if fd == self.wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self.wake_fd)
            else:
                host_ready.append((fd, revents))
        if self.interrupted:
            raise SyscallError(errno.ERESTARTSYS)
        if not ready and deadline is not None:
            raise SyscallError(errno.ETIMEDOUT)
        return host_ready

    def sleep_until(self, deadline: float) -> None:
        """Sleeps until deadline unless interrupted (raises ERESTARTSYS)."""
        while True:
            try:
                self.block(deadline)
            except SyscallError as e:
                if e.errno == errno.ETIMEDOUT:
                    return
                raise

    # Memory shortcuts used by nearly every handler.

    def copy_in(self, addr: int, length: int) -> bytes:
        """Reads application memory (EFAULT on a bad address)."""
        return self.mm.copy_in(addr, length)

    def copy_out(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Writes application memory (EFAULT on a bad address)."""
        self.mm.copy_out(addr, data)

    def copy_in_string(self, addr: int, max_length: int = 4096) -> bytes:
        """Reads a NUL-terminated string (a path by default)."""
        return self.mm.copy_in_string(addr, max_length)

    def close(self) -> None:
        """Frees host resources of a task that has exited."""
        os.close(self.wake_fd)
