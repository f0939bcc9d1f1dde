"""The task run loop: an explicit state machine on the task's own thread.

A task is always in one state. RunApp runs application code through the
platform and handles what comes back; RunInterrupt handles signals, exit
requests and system call restarts; RunExit tears the task down. Each state's
`execute` returns the next state, so the loop is the only place a task moves
between them, and a task can be held between states (a stop, an execve).
"""

from __future__ import annotations

import logging
from time import monotonic_ns
from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.platform import platform as P
from pkg.sentry.kernel import ptrace
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task import set_current_task
from pkg.sentry.kernel.task_exit import exit_task, wait_status_signaled
from pkg.sentry.kernel.task_signals import force_signal, group_exit, handle_interrupt

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)


class TaskRunState:
    """TaskRunState is one state of the run loop."""

    __slots__ = ()

    def execute(self, t: Task) -> TaskRunState | None:
        """Runs the state and returns the next one (None: the task is gone)."""
        raise NotImplementedError


class RunApp(TaskRunState):
    """RunApp runs application code until something needs the kernel."""

    __slots__ = ()

    def execute(self, t: Task) -> TaskRunState | None:
        state = t.state
        ctx = t.context
        cpu = t.cpu
        dispatch = t.kernel.dispatch
        while not t.interrupted:
            # User time is the time spent in switch (cputime.py).
            user = cpu.run[0]
            start = monotonic_ns()
            cpu.run = (user, start)
            stepping = t.ptrace is not None and ptrace.wants_step(t)
            if stepping:
                state.regs[P.EFLAGS] |= ptrace.EFLAGS_TF
            try:
                event = ctx.switch(t.mm.address_space, state)
            except OSError as e:
                cpu.run = (user, 0)
                # The platform refused the register state (say, a corrupt
                # XSAVE image from sigreturn): Linux sends SIGSEGV.
                log.debug("task: tid=%d switch failed: %s", t.tid, e)
                force_signal(t, SignalInfo(signo=S.SIGSEGV, code=S.SI_KERNEL))
                break
            cpu.run = (user + monotonic_ns() - start, 0)
            if stepping:
                state.regs[P.EFLAGS] &= ~ptrace.EFLAGS_TF
            if event == P.EVENT_SYSCALL:
                t.mm.note_progress()
                if t.ptrace is None:
                    dispatch(t)
                else:
                    ptrace.syscall_stops(t, dispatch)
            elif event == P.EVENT_FAULT:
                _handle_fault(t)
            elif event == P.EVENT_INTERRUPT:
                # The sentry preempted the application (sched_stats.py).
                cpu.nivcsw += 1
                break
            elif event == P.EVENT_SIGNAL:
                force_signal(t, SignalInfo.from_host(state.siginfo_bytes()))
            else:
                log.error("task: tid=%d platform context died", t.tid)
                group_exit(t, wait_status_signaled(S.SIGKILL))
                break
        return RUN_INTERRUPT


def _handle_fault(t: Task) -> None:
    # The platform reports only the address, rip and the host's si_code; the
    # mm works out the access and returns the signal to send, if any.
    state = t.state
    _signo, _err, code, addr = state.siginfo()
    rip = state.regs[P.RIP]
    sig = t.mm.handle_fault(addr, 0, rip, code, t.tg.limits)
    if sig is None:
        return
    if t.kernel.config.strace:
        t.kernel.strace.signal(t, sig[0], sig[1], addr, rip)
    force_signal(t, SignalInfo(signo=sig[0], code=sig[1], addr=addr))


class RunInterrupt(TaskRunState):
    """RunInterrupt delivers signals and resolves system call restarts."""

    __slots__ = ()

    def execute(self, t: Task) -> TaskRunState | None:
        t.kernel.pause_gate(t)
        restart = t.syscall_restart
        t.syscall_restart = 0
        if not handle_interrupt(t, restart):
            return RUN_EXIT
        return RUN_APP


class RunExit(TaskRunState):
    """RunExit releases the task and ends its thread."""

    __slots__ = ()

    def execute(self, t: Task) -> TaskRunState | None:
        if t.ptrace is not None:
            ptrace.exit_event(t)
        exit_task(t)
        return None


RUN_APP = RunApp()
RUN_INTERRUPT = RunInterrupt()
RUN_EXIT = RunExit()


def run(t: Task) -> None:
    """The body of a task's host thread."""
    state: TaskRunState | None = RUN_APP
    set_current_task(t)
    try:
        t.cpu.start()
        t.context = t.kernel.platform.new_context()
        while state is not None:
            state = state.execute(t)
    except BaseException:
        log.exception(
            "task: tid=%d internal error in state %s", t.tid, type(state).__name__
        )
        t.kernel.panic(f"internal error in task {t.tid}")
        if state is not RUN_EXIT and state is not None:
            try:
                exit_task(t)
            except BaseException:
                log.exception("task: tid=%d cannot exit cleanly", t.tid)
