"""Controller: the sandbox side of runsc's verbs, served over the control
socket (pkg/sentry/control).

The sandbox process creates the container's init process when it boots and
reports `created`; `start` lets init run. The container's status lives
here, in the only process that knows it for sure:

    created --start--> running <--pause/resume--> paused
       |                  |
       '------------------+--> stopped (init exited, or a signal ended the
                                container before it started)

Once stopped, the sandbox process exits with init's exit status (a signal
as 128 + its number), which is what the container client waits for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.errors import ControlError
from pkg.sentry.kernel.credentials import Credentials
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_exit import wait_status_signaled
from pkg.sentry.kernel.task_signals import send_to_thread_group
from pkg.sentry.kernel.thread_group import ThreadGroup
from runsc.boot.sandbox import ExecutableNotFound, ProcessSpec, Sandbox

log = logging.getLogger(__name__)

# Signals a terminal sends its foreground process group.
_TERMINAL_SIGNALS = frozenset((S.SIGINT, S.SIGQUIT, S.SIGTSTP, S.SIGWINCH))

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"

# How many exit statuses of exec'd processes are kept for a later wait.
_MAX_EXITED = 1024

# How long a wait for a process with a terminal waits, after the exit, for
# the terminal's last output to reach the host (runc's exec also copies it
# all before it returns); a client that reads nothing must not hold it.
TERMINAL_DRAIN_SECONDS = 5.0


def credentials_from(c: pb.Credentials) -> Credentials:
    """Returns the sentry credentials a control message describes."""
    return Credentials(
        ruid=c.uid,
        euid=c.uid,
        suid=c.uid,
        fsuid=c.uid,
        rgid=c.gid,
        egid=c.gid,
        sgid=c.gid,
        fsgid=c.gid,
        groups=tuple(c.additional_gids),
        permitted=c.cap_permitted,
        effective=c.cap_effective,
        inheritable=c.cap_inheritable,
        bounding=c.cap_bounding,
        ambient=c.cap_ambient,
        no_new_privs=c.no_new_privileges,
    )


def limits_from(rlimits: list[pb.Rlimit]) -> LimitSet:
    """Returns the default limits with the given ones applied."""
    limits = LimitSet()
    for r in rlimits:
        limits.set(r.resource, r.soft, r.hard)
    return limits


def process_spec(p: pb.Process, stdio: list[int]) -> ProcessSpec:
    """Returns the ProcessSpec for a control Process."""
    return ProcessSpec(
        argv=list(p.argv),
        env=list(p.env),
        cwd=p.cwd or "/",
        executable=p.filename or (p.argv[0] if p.argv else ""),
        stdio=stdio,
        creds=credentials_from(p.credentials),
        limits=limits_from(list(p.rlimits)),
        umask=p.umask,
        terminal=p.terminal,
        console=p.console,
    )


def _terminates(signo: int) -> bool:
    return S.default_action(signo) not in (
        S.ACTION_IGNORE,
        S.ACTION_CONTINUE,
        S.ACTION_STOP,
    )


class Controller:
    """Controller carries out control requests for the sandbox's container.

    Args:
        sandbox: the sandbox.
        init: the container's first process, created but not started.
        console: the sandbox process's controlling terminal is the pty
            runsc made for init's terminal (the client holds its master).
    """

    def __init__(self, sandbox: Sandbox, init: Task, console: bool = False) -> None:
        self.sandbox = sandbox
        # The client's closing the terminal reaches init through the relay
        # (not when init got the host pty itself, runsc/boot/console.py).
        self._hang_up_by_relay = console and sandbox.relay_of(init.tg.tgid) is not None
        self.kernel = sandbox.kernel
        self.init = init
        self.status = CREATED
        self.exit_status: int | None = None
        # Set once the container has stopped; the sandbox then exits.
        self.stopped = threading.Event()
        self._mu = threading.Lock()
        self._exited: dict[int, int] = {}
        self._exit_cond = threading.Condition(self._mu)
        self._exec_tgs: dict[int, ThreadGroup] = {}
        self.kernel.orphan_exit_callback = self._on_exec_exit

    # Lifecycle.

    def stop(self, status: int) -> None:
        """Marks the container stopped with init's wait status."""
        with self._mu:
            if self.status == STOPPED:
                return
            self.status = STOPPED
            self.exit_status = status
            self._exit_cond.notify_all()
        log.info("boot: container stopped with wait status %#x", status)
        self.stopped.set()

    def _watch_init(self) -> None:
        status = self.sandbox.wait()
        assert status is not None
        self.stop(status)

    def _on_exec_exit(self, tg: ThreadGroup) -> None:
        with self._mu:
            if self._exec_tgs.pop(tg.tgid, None) is None:
                return
            if len(self._exited) >= _MAX_EXITED:
                self._exited.pop(next(iter(self._exited)))
            self._exited[tg.tgid] = tg.exit_status
            self._exit_cond.notify_all()
        self.kernel.reap(tg)

    def forward_host_signal(self, signo: int) -> None:
        """Handles a signal sent to the sandbox process on the host."""
        with self._mu:
            status = self.status
        if signo == S.SIGHUP and self._hang_up_by_relay:
            # The client closed the terminal: the relay hangs init's
            # terminal up, which signals its session as Linux would; a
            # second SIGHUP from here would be one more than under runc.
            return
        if signo == S.SIGWINCH and status == CREATED:
            # The client sized the terminal before the start: init's
            # terminal follows (it is no one's foreground yet).
            self.sandbox.signal_foreground(signo)
            return
        if status in (RUNNING, PAUSED):
            # What a terminal generates goes to its foreground group, as the
            # host terminal would have sent it there.
            if signo in _TERMINAL_SIGNALS and self.sandbox.signal_foreground(signo):
                return
            self.sandbox.signal_init(signo)
        elif status == CREATED and _terminates(signo):
            self.stop(wait_status_signaled(signo))

    # Requests.

    def start(self, req: pb.StartRequest, fds: list[int]) -> pb.StartResponse:
        """Runs the container's init."""
        _close(fds)
        with self._mu:
            if self.status != CREATED:
                raise ControlError(
                    f"cannot start a container that is {self.status}", errno.EINVAL
                )
            self.status = RUNNING
        self.sandbox.start_process(self.init)
        threading.Thread(target=self._watch_init, name="init-wait", daemon=True).start()
        return pb.StartResponse()

    def exec(self, req: pb.ExecRequest, fds: list[int]) -> pb.ExecResponse:
        """Creates and starts a further process in the container."""
        if len(fds) != 3:
            _close(fds)
            raise ControlError("exec needs three stdio descriptors")
        try:
            with self._mu:
                if self.status != RUNNING:
                    raise ControlError(
                        f"cannot exec in a container that is {self.status}",
                        errno.EINVAL,
                    )
            spec = process_spec(req.process, fds)
            try:
                t = self.sandbox.create_process(spec)
            except SyscallError as e:
                raise ControlError(f"exec {spec.executable}: {e}", e.errno) from None
            except ExecutableNotFound as e:
                raise ControlError(str(e), errno.ENOENT) from None
            with self._mu:
                self._exec_tgs[t.tg.tgid] = t.tg
            self.sandbox.start_process(t)
            return pb.ExecResponse(pid=t.tg.tgid)
        finally:
            _close(fds)

    def signal(self, req: pb.SignalRequest, fds: list[int]) -> pb.SignalResponse:
        """Sends a signal to one process, a process group, or all."""
        _close(fds)
        signo = req.signo
        if not 0 < signo <= S.SIGRTMAX:
            raise ControlError(f"invalid signal {signo}", errno.EINVAL)
        with self._mu:
            status = self.status
        if status == STOPPED:
            raise ControlError("container is not running", errno.ESRCH)
        if status == CREATED:
            # The container has no running process yet: a signal that would
            # end init ends the container, as it ends runc's waiting init.
            if req.pid in (0, self.init.tg.tgid) or req.mode == req.ALL:
                if _terminates(signo):
                    self.stop(wait_status_signaled(signo))
                return pb.SignalResponse()
            raise ControlError(f"no process {req.pid}", errno.ESRCH)

        relay = self.sandbox.relay_of(req.pid) if req.mode == req.PROCESS else None
        if signo == S.SIGWINCH and relay is not None:
            # From `runsc exec` on a terminal that changed size (runc's
            # exec resizes the process's terminal then): the sentry terminal
            # follows the host's and signals its foreground group.
            relay.sync_winsize()
            return pb.SignalResponse()
        info = SignalInfo(signo=signo, code=S.SI_USER)
        tgs = self._targets(req)
        if not tgs:
            raise ControlError(f"no process {req.pid}", errno.ESRCH)
        for tg in tgs:
            # As from a process outside the container (no sender pid in it):
            # init only gets what it handles, and SIGKILL and SIGSTOP.
            send_to_thread_group(tg, info)
        return pb.SignalResponse()

    def _targets(self, req: pb.SignalRequest) -> list[ThreadGroup]:
        tasks = self.kernel.tasks
        with tasks.mu:
            live = [tg for tg in tasks.thread_groups.values() if not tg.zombie]
        if req.mode == req.ALL:
            return live
        pid = req.pid or self.init.tg.tgid
        if req.mode == req.PROCESS_GROUP:
            return [tg for tg in live if tg.pgid == pid]
        return [tg for tg in live if tg.tgid == pid]

    def wait(self, req: pb.WaitRequest, fds: list[int]) -> pb.WaitResponse:
        """Waits for init (pid 0) or an exec'd process to exit."""
        _close(fds)
        with self._mu:
            if req.pid in (0, self.init.tg.tgid):
                self._exit_cond.wait_for(lambda: self.exit_status is not None)
                assert self.exit_status is not None
                return pb.WaitResponse(status=self.exit_status)
            if req.pid not in self._exec_tgs and req.pid not in self._exited:
                raise ControlError(f"no process {req.pid} to wait for", errno.ECHILD)
            self._exit_cond.wait_for(
                lambda: req.pid in self._exited or self.status == STOPPED
            )
            status = self._exited.pop(req.pid, None)
        if status is None:
            # The container stopped first and took the process with it.
            status = wait_status_signaled(S.SIGKILL)
        self.sandbox.wait_relays([req.pid], TERMINAL_DRAIN_SECONDS)
        return pb.WaitResponse(status=status)

    def ps(self, req: pb.PsRequest, fds: list[int]) -> pb.PsResponse:
        """Lists the container's processes."""
        _close(fds)
        tasks = self.kernel.tasks
        now_ns = time.time_ns()
        boot_ns = now_ns - self.kernel.uptime_ns()
        out = pb.PsResponse()
        with tasks.mu:
            tgs = sorted(tasks.thread_groups.values(), key=lambda tg: tg.tgid)
            for tg in tgs:
                if tg.zombie or tg.leader is None:
                    continue
                leader = tg.leader
                out.processes.append(
                    pb.ProcessInfo(
                        pid=tg.tgid,
                        ppid=tg.parent.tgid if tg.parent is not None else 0,
                        uid=leader.creds.ruid,
                        start_time_ns=boot_ns,
                        comm=leader.name.decode(errors="replace"),
                        threads=len(tg.tasks),
                    )
                )
        return out

    def pause(self, req: pb.PauseRequest, fds: list[int]) -> pb.PauseResponse:
        """Stops every task until resume."""
        _close(fds)
        with self._mu:
            if self.status != RUNNING:
                raise ControlError(
                    f"cannot pause a container that is {self.status}", errno.EINVAL
                )
            self.status = PAUSED
        self.kernel.pause()
        return pb.PauseResponse()

    def resume(self, req: pb.ResumeRequest, fds: list[int]) -> pb.ResumeResponse:
        """Lets a paused container run again."""
        _close(fds)
        with self._mu:
            if self.status != PAUSED:
                raise ControlError(
                    f"cannot resume a container that is {self.status}", errno.EINVAL
                )
            self.status = RUNNING
        self.kernel.resume()
        return pb.ResumeResponse()

    def state(self, req: pb.StateRequest, fds: list[int]) -> pb.StateResponse:
        """Reports the container's status."""
        _close(fds)
        with self._mu:
            return pb.StateResponse(
                status=self.status, exit_status=self.exit_status or 0
            )

    def stats(self, req: pb.StatsRequest, fds: list[int]) -> pb.StatsResponse:
        """Reports resource usage."""
        _close(fds)
        tasks = self.kernel.tasks
        with tasks.mu:
            pids = sum(1 for tg in tasks.thread_groups.values() if not tg.zombie)
            threads = len(tasks.tasks)
        return pb.StatsResponse(
            memory_usage_bytes=self.kernel.mf.allocated,
            pids=pids,
            threads=threads,
        )


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
