"""ThreadGroup: a process, the set of tasks that share a PID (struct
signal_struct plus the process-level parts of task_struct)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.sentry.kernel.credentials import SUID_DUMP_USER
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.sched_stats import TaskIO
from pkg.sentry.kernel.signals import PendingSignals, SignalHandlers
from pkg.sentry.kernel.task_acct import Usage
from pkg.sentry.kernel.timers import ThreadGroupTimers
from pkg.sentry.kernel.waiter import Queue

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.sessions import ProcessGroup
    from pkg.sentry.kernel.task import Task


class ThreadGroup:
    """ThreadGroup holds what the threads of one process share.

    Fields marked "signal lock" are guarded by signal_handlers.mu; the process
    tree fields (parent, real_parent, children, process_group, zombie,
    reaped) by Kernel.tasks.mu.
    """

    __slots__ = (
        "child_subreaper",
        "child_usage",
        "children",
        "ctty_detached",
        "dumpable",
        "exec_id",
        "exec_task",
        "execed",
        "exit_queue",
        "exit_signal",
        "exit_status",
        "exited_cputime",
        "exited_ioac",
        "exited_switches",
        "exiting",
        "group_stop_count",
        "has_subreaper_ancestor",
        "kernel",
        "leader",
        "leader_tracer",
        "limits",
        "max_rss_kb",
        "oom_score_adj",
        "oom_score_adj_min",
        "parent",
        "parent_exec_id",
        "pending",
        "process_group",
        "ptracer_any",
        "ptracer_exception",
        "real_parent",
        "reaped",
        "signal_handlers",
        "stop_signo",
        "stopped",
        "tasks",
        "tgid",
        "thp_disable",
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
        # The thread of parent that created this process, or that adopted
        # it: the thread whose exit fires PR_SET_PDEATHSIG, and whose
        # __WNOTHREAD waits see this child (task->real_parent).
        self.real_parent: Task | None = None
        self.children: list[ThreadGroup] = []
        # A group exit (exit_group or a fatal signal) is in progress; the
        # status is the wait status every thread exits with (signal lock).
        self.exiting = False
        self.exit_status = 0
        # Every task has exited and the process awaits its parent's wait.
        self.zombie = False
        # The parent has collected the zombie; the process is gone.
        self.reaped = False
        # Sent to the parent when the process exits (SIGCHLD usually); 0 for
        # none.
        self.exit_signal = S.SIGCHLD
        # Set by the sessions code (sessions.py); None only while the
        # process is being created.
        self.process_group: ProcessGroup | None = None
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
        # The process gave its session's controlling terminal up
        # (TIOCNOTTY by a non-leader); inherited by fork, cleared by setsid.
        self.ctty_detached = False
        # The I/O counters of the threads that have exited (/proc/pid/io).
        self.exited_ioac = TaskIO()
        # (voluntary, involuntary) context switches of exited threads.
        self.exited_switches = (0, 0)
        # Interval timers and POSIX timers (timers.py).
        self.timers = ThreadGroupTimers(self)
        self.child_subreaper = False
        self.has_subreaper_ancestor = False
        # Woken when a child changes state (for wait4 and friends).
        self.wait_queue = Queue()
        # Woken when this process exits (pidfd readiness).
        self.exit_queue = Queue()
        # The thread running execve while it waits for its siblings to exit
        # (signal lock).
        self.exec_task: Task | None = None
        # The process has called execve since fork (setpgid's EACCES).
        self.execed = False
        # Counts this process's execve calls (self_exec_id), and the
        # parent's count when this process was created (parent_exec_id): a
        # parent that has exec'd since gets SIGCHLD whatever exit_signal
        # says.
        self.exec_id = 0
        self.parent_exec_id = 0
        # PR_SET_DUMPABLE (a property of the mm in Linux).
        self.dumpable = SUID_DUMP_USER
        # PR_SET_THP_DISABLE (a property of the mm in Linux).
        self.thp_disable = False
        # The resident size high-water mark in KiB, as sampled (task_acct),
        # and the usage of reaped children (Kernel.tasks.mu).
        self.max_rss_kb = 0
        self.child_usage = Usage()
        # /proc/pid/oom_score_adj, and the lowest value an unprivileged
        # writer may set again (signal_struct's oom_score_adj_min).
        self.oom_score_adj = 0
        self.oom_score_adj_min = 0
        # PR_SET_PTRACER (Yama, Kernel.tasks.mu): the process allowed to
        # attach to this one besides its ancestors (and theirs), or any.
        self.ptracer_exception: ThreadGroup | None = None
        self.ptracer_any = False
        # The tracer of a leader that exited before its threads, told of the
        # process's exit when the last one goes (ptrace.tracee_exits).
        self.leader_tracer: Task | None = None

    def __repr__(self) -> str:
        return f"ThreadGroup(tgid={self.tgid})"

    @property
    def pgid(self) -> int:
        """The id of the process's process group."""
        pg = self.process_group
        return pg.pgid if pg is not None else self.tgid

    @property
    def sid(self) -> int:
        """The id of the process's session."""
        pg = self.process_group
        return pg.session.sid if pg is not None else self.tgid
