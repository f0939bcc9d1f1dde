"""ThreadGroup: a process, the set of tasks that share a PID (struct
signal_struct plus the process-level parts of task_struct)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import PendingSignals, SignalHandlers
from pkg.sentry.kernel.timers import ThreadGroupTimers
from pkg.sentry.kernel.waiter import Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task


class ThreadGroup:
    """ThreadGroup holds what the threads of one process share.

    Fields marked "signal lock" are guarded by signal_handlers.mu; the process
    tree fields (parent, children) by Kernel.tasks.mu.
    """

    __slots__ = (
        "child_subreaper",
        "children",
        "exit_signal",
        "exit_status",
        "exited_cputime",
        "exiting",
        "group_stop_count",
        "has_subreaper_ancestor",
        "kernel",
        "leader",
        "limits",
        "parent",
        "pending",
        "pgid",
        "sid",
        "signal_handlers",
        "stop_signo",
        "stopped",
        "tasks",
        "tgid",
        "timers",
        "wait_continued",
        "wait_queue",
        "wait_stopped_signo",
        "zombie",
    )

    def __init__(
        self,
        kernel: Kernel,
        tgid: int,
        signal_handlers: SignalHandlers,
        limits: LimitSet,
        parent: ThreadGroup | None,
    ) -> None:
        self.kernel = kernel
        self.tgid = tgid
        self.leader: Task | None = None
        # Live tasks (signal lock).
        self.tasks: list[Task] = []
        self.signal_handlers = signal_handlers
        # Signals sent to the whole process (signal lock).
        self.pending = PendingSignals()
        self.limits = limits
        self.parent = parent
        self.children: list[ThreadGroup] = []
        # A group exit (exit_group or a fatal signal) is in progress; the
        # status is the wait status every thread exits with (signal lock).
        self.exiting = False
        self.exit_status = 0
        # Every task has exited and the process awaits its parent's wait.
        self.zombie = False
        # Sent to the parent when the process exits (SIGCHLD usually).
        self.exit_signal = S.SIGCHLD
        self.pgid = tgid
        self.sid = tgid
        # Job control (signal lock). `stopped`: the group is in a group stop.
        # `wait_stopped_signo`: a stop, by that signal, not yet reported to
        # the parent by wait (WUNTRACED); `wait_continued`: a continue not
        # yet reported (WCONTINUED). Signal delivery sets them; wait clears
        # them.
        self.stopped = False
        self.wait_stopped_signo = 0
        self.wait_continued = False
        # A group stop in progress (task_stop.py, signal lock): how many
        # threads have yet to stop, and the signal that stops them.
        self.group_stop_count = 0
        self.stop_signo = 0
        # (user, system) nanoseconds of the threads that have exited.
        self.exited_cputime = (0, 0)
        # Interval timers and POSIX timers (timers.py).
        self.timers = ThreadGroupTimers(self)
        self.child_subreaper = False
        self.has_subreaper_ancestor = False
        # Woken when a child changes state (for wait4 and friends).
        self.wait_queue = Queue()

    def __repr__(self) -> str:
        return f"ThreadGroup(tgid={self.tgid})"
