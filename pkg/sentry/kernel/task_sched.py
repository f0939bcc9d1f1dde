"""Scheduling attributes of a task: policy, priority, nice, CPU affinity
and timer slack (sched(7)).

Unlike Linux, the sentry records these and reports them back but does not
apply them to the host threads that run the task: the ptrace platform keeps
each task's host thread and its stub on one CPU of its own choosing. CPU
numbers are those of the sandbox, 0 to Kernel.num_cpus - 1.
"""

from __future__ import annotations

from pkg.abi.linux import sched as SC

# Nice values (include/linux/sched/prio.h).
MIN_NICE = -20
MAX_NICE = 19
# Real-time priorities (MAX_RT_PRIO - 1).
MAX_RT_PRIO = 99
# A mask with every possible CPU (CPU_SETSIZE), narrowed to the sandbox's
# CPUs wherever it is used.
ALL_CPUS = (1 << 1024) - 1
# The default timer slack of a task, in nanoseconds.
DEFAULT_TIMER_SLACK_NS = 50_000


class SchedParams:
    """SchedParams holds what sched_setscheduler(2), sched_setaffinity(2),
    setpriority(2) and PR_SET_TIMERSLACK set. Written by the task itself or
    by a permitted task under the TaskSet's lock."""

    __slots__ = (
        "cpu_mask",
        "default_timer_slack_ns",
        "dl_deadline",
        "dl_period",
        "dl_runtime",
        "ioprio",
        "nice",
        "policy",
        "priority",
        "reset_on_fork",
        "slice_ns",
        "timer_slack_ns",
    )

    def __init__(self, cpu_mask: int) -> None:
        self.policy = SC.SCHED_OTHER
        # The static priority of real-time policies (sched_priority).
        self.priority = 0
        self.nice = 0
        self.reset_on_fork = False
        # Bit n set if the task may run on sandbox CPU n.
        self.cpu_mask = cpu_mask
        self.timer_slack_ns = DEFAULT_TIMER_SLACK_NS
        self.default_timer_slack_ns = DEFAULT_TIMER_SLACK_NS
        # The I/O priority ioprio_set(2) gave (IOPRIO_PRIO_VALUE), 0 for
        # none: kept and reported, as the sandbox has no block devices
        # to schedule.
        self.ioprio = 0
        # SCHED_DEADLINE's parameters, in nanoseconds (sched_setattr(2)).
        self.dl_runtime = 0
        self.dl_deadline = 0
        self.dl_period = 0
        # A fair task's time slice sched_setattr(2) asked for; 0 for the
        # default (Kernel.base_slice_ns).
        self.slice_ns = 0

    def fork(self) -> SchedParams:
        """Returns the child's attributes (sched_fork): inherited, except
        that SCHED_RESET_ON_FORK drops a real-time policy and a negative
        nice value."""
        child = SchedParams(self.cpu_mask)
        child.policy = self.policy
        child.priority = self.priority
        child.nice = self.nice
        child.timer_slack_ns = self.timer_slack_ns
        child.default_timer_slack_ns = self.timer_slack_ns
        child.ioprio = self.ioprio
        child.slice_ns = self.slice_ns
        child.dl_runtime = self.dl_runtime
        child.dl_deadline = self.dl_deadline
        child.dl_period = self.dl_period
        if self.reset_on_fork:
            if self.policy in (SC.SCHED_FIFO, SC.SCHED_RR, SC.SCHED_DEADLINE):
                child.policy = SC.SCHED_OTHER
                child.priority = 0
            child.nice = max(child.nice, 0)
        return child
