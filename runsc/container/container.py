"""Container: the OCI lifecycle, as runsc's verbs drive it.

A container is one sandbox process (runsc/boot) running one container, and
its state directory (state.py). Each verb is a short-lived runsc process
that takes the container's lock, reads the state, talks to the sandbox over
its control socket, and writes the state back.

The status a verb sees is derived, not just read: a container whose sandbox
process is gone is `stopped` whatever the file says, and a live sandbox is
asked for its own view (it knows when init exited).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from pkg.abi.linux import signal as S
from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.errors import ControlError
from pkg.unet import unet
from runsc.boot import syscalls
from runsc.config import Config
from runsc.container import console, hooks, rootfs
from runsc.container.state import (
    CONFIG_FILE,
    CONTROL_SOCKET,
    CREATED,
    CREATING,
    EXIT_FILE,
    PAUSED,
    RUNNING,
    STOPPED,
    ContainerError,
    NotExistError,
    State,
    StateDir,
    now_rfc3339,
    process_alive,
    process_start_time,
    write_atomic,
)
from runsc.sandbox import cgroup, sandbox
from runsc.sandbox.errors import SandboxError
from runsc.specutils import spec as specutils

log = logging.getLogger(__name__)

# How long `delete` waits for a killed sandbox process to go.
_KILL_WAIT_SECONDS = 10.0


@dataclass(slots=True)
class CreateArgs:
    """CreateArgs are the options of create and run."""

    container_id: str
    bundle: str
    pid_file: str = ""
    console_socket: str = ""
    # The sandbox dies with this runsc (run without --detach, do).
    attached: bool = False
    # A spec to use instead of BUNDLE/config.json (do).
    spec: specutils.Spec | None = None
    # The container's stdio when there is no terminal: this process's own by
    # default.
    stdio: list[int] = field(default_factory=lambda: [0, 1, 2])


class Container:
    """Container is one container and its state directory."""

    def __init__(self, config: Config, sd: StateDir, state: State) -> None:
        self.config = config
        self.sd = sd
        self.state = state
        # The sandbox process when this runsc started it.
        self.proc: subprocess.Popen | None = None

    @property
    def id(self) -> str:
        """The container's id."""
        return self.state.id

    # Loading.

    @classmethod
    def load(cls, config: Config, container_id: str) -> Container:
        """Loads an existing container (without holding its lock).

        Raises:
            NotExistError: there is no such container.
        """
        specutils.validate_id(container_id)
        sd = StateDir(config.root, container_id)
        return cls(config, sd, sd.load())

    def reload(self) -> None:
        """Re-reads the state file (under the lock)."""
        self.state = self.sd.load()

    def spec(self) -> specutils.Spec:
        """Returns the spec the container was created with."""
        with open(self.sd.file(CONFIG_FILE), "rb") as f:
            return json.loads(f.read())

    def _socket(self) -> str:
        return self.sd.file(CONTROL_SOCKET)

    def _call(
        self, request: pb.Request, fds: tuple[int, ...] = (), **kw: Any
    ) -> pb.Response:
        return sandbox.call(self._socket(), request, fds, **kw)

    # Status.

    def sandbox_alive(self) -> bool:
        """Reports whether the sandbox process runs."""
        return process_alive(self.state.pid, self.state.pid_start)

    def status(self) -> str:
        """Returns the container's status as the OCI defines it."""
        st = self.state
        if not self.sandbox_alive():
            return CREATING if st.status == CREATING and st.pid == 0 else STOPPED
        if st.status == CREATING:
            return CREATING
        try:
            resp = self._call(pb.Request(state=pb.StateRequest()), timeout=2.0)
        except (SandboxError, ControlError):
            return STOPPED if not self.sandbox_alive() else st.status
        return resp.state.status

    def oci_state(self) -> dict[str, Any]:
        """Returns the state as `runsc state` prints it."""
        return self.state.oci_state(self.status())

    # create.

    @classmethod
    def create(cls, config: Config, args: CreateArgs) -> Container:
        """Creates a container: returns once its sandbox exists and has
        created init, the hooks have run and the pid file is written.

        Raises:
            ContainerError and its kinds: the container cannot be created;
                nothing is left behind.
        """
        specutils.validate_id(args.container_id)
        bundle = os.path.abspath(args.bundle or ".")
        if args.spec is not None:
            spec = args.spec
        else:
            spec = specutils.load(bundle)
        for w in specutils.check(spec, bundle):
            log.warning("spec: %s", w)
        root = specutils.root_path(spec, bundle)
        process = spec["process"]
        settings = specutils.process_settings(process)
        if settings.terminal and not args.console_socket and not args.attached:
            raise ContainerError(
                "cannot allocate a terminal without --console-socket "
                "(process.terminal is true)"
            )
        if settings.terminal and not args.console_socket and not os.isatty(0):
            # As runc, which fails to open /dev/tty: a terminal relayed from
            # a pipe would leave the container waiting for input nobody
            # can type, and pid 1 ignores the signals that could end it.
            raise ContainerError(
                "process.terminal is true, but stdin is not a terminal and "
                "there is no --console-socket"
            )

        sd = StateDir(config.root, args.container_id)
        sd.make()
        c = cls(
            config,
            sd,
            State(
                id=args.container_id,
                bundle=bundle,
                rootfs=root,
                status=CREATING,
                created=now_rfc3339(),
                owner="",
                annotations=dict(spec.get("annotations", {})),
                attached=args.attached,
            ),
        )
        try:
            with sd.lock():
                c._create_locked(spec, settings, args)
        except BaseException:
            c._destroy()
            raise
        return c

    def _create_locked(
        self,
        spec: specutils.Spec,
        settings: specutils.ProcessSettings,
        args: CreateArgs,
    ) -> None:
        sd = self.sd
        sd.save(self.state)
        spec_bytes = json.dumps(spec).encode()
        write_atomic(sd.file(CONFIG_FILE), spec_bytes, 0o600)

        try:
            executable = rootfs.resolve_process(
                self.state.rootfs,
                settings.argv[0],
                settings.env,
                settings.cwd,
                spec.get("mounts") or [],
                make_cwd=True,
            )
        except rootfs.ExecutableError as e:
            raise ContainerError(str(e)) from None

        try:
            cg = cgroup.plan(spec.get("linux") or {})
            if cg is not None:
                for w in cg.make():
                    log.warning("spec: %s", w)
        except cgroup.SystemdPathError as e:
            log.warning("spec: %s", e)
            cg = None
        except cgroup.CgroupError as e:
            raise ContainerError(str(e)) from None

        opened: list[int] = []
        try:
            use_console = settings.terminal and bool(args.console_socket)
            if use_console:
                # The client gets this pty's master; the sandbox relays its
                # replica to the container's own terminal, /dev/pts/0 in
                # the container, as under runc (runsc/boot/console.py).
                # Without a console socket (attached), runsc's own stdio
                # is relayed, as runc relays its stdio in the foreground.
                master, replica = console.new_pty()
                opened.append(replica)
                try:
                    console.set_size(master, spec["process"].get("consoleSize"))
                    console.send_master(args.console_socket, master)
                except console.ConsoleError as e:
                    raise ContainerError(str(e)) from None
                finally:
                    os.close(master)
                stdio = [replica] * 3
            else:
                stdio = [os.dup(fd) for fd in args.stdio]
                opened += stdio
            control_fd = unet.listen(sd.file(CONTROL_SOCKET)).detach()
            opened.append(control_fd)
            exit_fd = os.open(
                sd.file(EXIT_FILE),
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o600,
            )
            opened.append(exit_fd)
            try:
                self.proc = sandbox.spawn(
                    self.config,
                    sandbox.SpawnArgs(
                        container_id=self.id,
                        bundle=self.state.bundle,
                        spec=spec_bytes,
                        executable=executable,
                        stdio=stdio,
                        control_fd=control_fd,
                        exit_fd=exit_fd,
                        console=use_console,
                        attached=args.attached,
                        cgroup=cg,
                    ),
                    on_started=self._record_sandbox,
                )
            except SandboxError as e:
                raise ContainerError(str(e)) from None
        finally:
            for fd in set(opened):
                os.close(fd)

        self.state.status = CREATED
        sd.save(self.state)
        _set_oom_score_adj(self.proc.pid, spec["process"].get("oomScoreAdj"))

        spec_hooks = spec.get("hooks", {})
        # The status runc gives these hooks: the container is not created
        # until they have succeeded.
        oci = self.state.oci_state(CREATING)
        try:
            for kind in ("prestart", "createRuntime"):
                hooks.run_hooks(kind, spec_hooks.get(kind, []), oci)
        except hooks.HookError as e:
            raise ContainerError(str(e)) from None
        if args.pid_file:
            write_atomic(os.path.abspath(args.pid_file), str(self.proc.pid).encode())
        log.debug("container: %s created, sandbox pid %d", self.id, self.proc.pid)

    def _record_sandbox(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.state.pid = proc.pid
        self.state.pid_start = process_start_time(proc.pid)
        self.sd.save(self.state)

    # start.

    def start(self) -> None:
        """Starts a created container.

        Raises:
            ContainerError: it is not in the created state, or its sandbox
                refused.
        """
        with self.sd.lock():
            self.reload()
            status = self.status()
            if status != CREATED:
                raise ContainerError(
                    f"cannot start a container that is {status} (id {self.id})"
                )
            try:
                self._call(pb.Request(start=pb.StartRequest()))
            except (ControlError, SandboxError) as e:
                raise ContainerError(f"starting container {self.id}: {e}") from None
            self.state.status = RUNNING
            self.sd.save(self.state)
            try:
                hooks.run_hooks(
                    "poststart",
                    self.spec().get("hooks", {}).get("poststart", []),
                    # runc's poststart hooks see the status from before the
                    # start; clients compare with runc.
                    self.state.oci_state(CREATED),
                )
            except hooks.HookError as e:
                log.warning("container: %s", e)

    # kill.

    def kill(self, signo: int, all_processes: bool = False) -> None:
        """Sends a signal to the container's init, or to all its processes.

        Works in the created state too: a signal that would end init ends
        the container.

        Raises:
            ContainerError: the container is not running (unless
                all_processes, which succeeds on a stopped container as
                runc's does).
        """
        with self.sd.lock(exclusive=False):
            self.reload()
            status = self.status()
            if status == STOPPED:
                if all_processes:
                    return
                raise ContainerError(f"container {self.id} is not running")
            mode = pb.SignalRequest.ALL if all_processes else pb.SignalRequest.PROCESS
            try:
                self._call(pb.Request(signal=pb.SignalRequest(signo=signo, mode=mode)))
            except ControlError as e:
                if not self.sandbox_alive():
                    if all_processes:
                        return
                    raise ContainerError(
                        f"container {self.id} is not running"
                    ) from None
                raise ContainerError(f"kill {self.id}: {e}") from None
            except SandboxError as e:
                if signo == S.SIGKILL or status in (CREATING, CREATED):
                    self._kill_sandbox()
                    return
                raise ContainerError(f"kill {self.id}: {e}") from None

    # delete.

    def delete(self, force: bool = False) -> None:
        """Deletes a container, running poststop hooks.

        Raises:
            ContainerError: it is running or paused and force is not set.
        """
        with self.sd.lock():
            try:
                self.reload()
            except NotExistError:
                raise
            except ContainerError:
                if not force:
                    raise
                self.sd.remove()
                return
            status = self.status()
            if status in (RUNNING, PAUSED) and not force:
                raise ContainerError(
                    f"cannot delete container {self.id} that is not stopped: {status}"
                )
            self._kill_sandbox()
            try:
                spec_hooks = self.spec().get("hooks", {})
            except (OSError, ValueError):
                spec_hooks = {}
            try:
                hooks.run_hooks(
                    "poststop",
                    spec_hooks.get("poststop", []),
                    self.state.oci_state(STOPPED),
                )
            except hooks.HookError as e:
                log.warning("container: %s", e)
            self._remove_cgroups()
            self.sd.remove()

    def _kill_sandbox(self) -> None:
        """Kills the sandbox process, if it runs, and waits until it is
        gone. Every process in its PID namespace dies with it."""
        if self.proc is not None:
            sandbox.kill(self.proc)
            return
        pid = self.state.pid
        if not self.sandbox_alive():
            return
        try:
            pidfd = syscalls.pidfd_open(pid)
        except OSError:
            return
        try:
            # The pidfd pins the process: the check above and the signal
            # below are about the same process, even if the pid is reused.
            if process_start_time(pid) != self.state.pid_start:
                return
            with contextlib.suppress(ProcessLookupError):
                syscalls.pidfd_send_signal(pidfd, signal.SIGKILL)
            # A pidfd polls readable once its process has exited.
            select.select([pidfd], [], [], _KILL_WAIT_SECONDS)
        finally:
            os.close(pidfd)

    def _destroy(self) -> None:
        """Undoes a failed create: the sandbox, its cgroups and the state
        directory."""
        with contextlib.suppress(Exception):
            self._kill_sandbox()
        self._remove_cgroups()
        self.sd.remove()

    def _remove_cgroups(self) -> None:
        """Removes the container's host cgroups (as runc's delete does),
        once the sandbox is gone."""
        try:
            cg = cgroup.plan(self.spec().get("linux") or {})
        except (OSError, ValueError, cgroup.CgroupError):
            return
        cgroup.remove_quietly(cg)

    # wait.

    def wait(self) -> int:
        """Waits for the container to stop; returns init's wait status.

        Raises:
            ContainerError: the exit status is unknown (the sandbox was
                killed before it could record it).
        """
        if self.proc is not None:
            # Our own child: its exit status is the container's.
            code = self.proc.wait()
            sandbox.reap_gofers()
            status = self.sd.read_exit_status()
            if status is not None:
                return status
            return _code_to_wait_status(code)
        try:
            resp = self._call(pb.Request(wait=pb.WaitRequest()), timeout=None)
            return resp.wait.status
        except (SandboxError, ControlError):
            pass
        self._wait_gone()
        status = self.sd.read_exit_status()
        if status is None:
            raise ContainerError(f"the exit status of container {self.id} is unknown")
        return status

    def _wait_gone(self) -> None:
        while self.sandbox_alive():
            time.sleep(0.01)

    # exec.

    def exec(
        self, process: specutils.Spec, console_socket: str = "", attached: bool = True
    ) -> int:
        """Starts a further process in the container.

        Args:
            process: an OCI process object.
            console_socket: where to send the terminal, if process.terminal.
            attached: runsc stays to wait for the process: without a
                console socket, its terminal is relayed to runsc's stdio.

        Returns:
            The process's pid inside the sandbox.

        Raises:
            ContainerError: the container is not running, or the process
                cannot be started.
        """
        with self.sd.lock(exclusive=False):
            self.reload()
            status = self.status()
            if status != RUNNING:
                raise ContainerError(f"cannot exec in a container that is {status}")
            for w in specutils.check_process(process):
                log.warning("exec: %s", w)
            settings = specutils.process_settings(process)
            try:
                filename = rootfs.resolve_process(
                    self.state.rootfs,
                    settings.argv[0],
                    settings.env,
                    settings.cwd,
                    self.spec().get("mounts") or [],
                )
            except rootfs.ExecutableError as e:
                raise ContainerError(str(e)) from None
            opened: list[int] = []
            try:
                if settings.terminal and not console_socket and attached:
                    # The process's terminal is relayed to runsc's stdio
                    # (as runc's exec relays it in the foreground).
                    stdio = [0, 1, 2]
                elif settings.terminal:
                    if not console_socket:
                        raise ContainerError(
                            "cannot allocate a terminal without --console-socket"
                        )
                    master, replica = console.new_pty()
                    opened.append(replica)
                    try:
                        console.set_size(master, process.get("consoleSize"))
                        console.send_master(console_socket, master)
                    except console.ConsoleError as e:
                        raise ContainerError(str(e)) from None
                    finally:
                        os.close(master)
                    stdio = [replica] * 3
                else:
                    stdio = [0, 1, 2]
                msg = _process_msg(settings, filename)
                msg.console = bool(settings.terminal and console_socket)
                req = pb.Request(exec=pb.ExecRequest(process=msg))
                try:
                    resp = self._call(req, tuple(stdio))
                except (ControlError, SandboxError) as e:
                    raise ContainerError(f"exec in {self.id}: {e}") from None
            finally:
                for fd in set(opened):
                    os.close(fd)
        return resp.exec.pid

    def wait_pid(self, pid: int) -> int:
        """Waits for an exec'd process; returns its wait status."""
        try:
            resp = self._call(pb.Request(wait=pb.WaitRequest(pid=pid)), timeout=None)
        except ControlError as e:
            raise ContainerError(f"wait for process {pid}: {e}") from None
        except SandboxError:
            # The sandbox went: the container stopped and took the process.
            return S.SIGKILL
        return resp.wait.status

    def signal_pid(self, pid: int, signo: int) -> None:
        """Sends a signal to one process of the container."""
        self._call(pb.Request(signal=pb.SignalRequest(pid=pid, signo=signo)))

    # ps, pause, resume, stats.

    def processes(self) -> list[pb.ProcessInfo]:
        """Lists the container's processes."""
        with self.sd.lock(exclusive=False):
            self.reload()
            if self.status() == STOPPED:
                return []
            try:
                return list(self._call(pb.Request(ps=pb.PsRequest())).ps.processes)
            except (ControlError, SandboxError) as e:
                raise ContainerError(f"ps {self.id}: {e}") from None

    def pause(self) -> None:
        """Pauses a running container."""
        self._set_paused(True)

    def resume(self) -> None:
        """Resumes a paused container."""
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        with self.sd.lock():
            self.reload()
            status = self.status()
            want = RUNNING if paused else PAUSED
            if status != want:
                verb = "pause" if paused else "resume"
                raise ContainerError(f"cannot {verb} a container that is {status}")
            req = (
                pb.Request(pause=pb.PauseRequest())
                if paused
                else pb.Request(resume=pb.ResumeRequest())
            )
            try:
                self._call(req)
            except (ControlError, SandboxError) as e:
                raise ContainerError(f"{self.id}: {e}") from None
            self.state.status = PAUSED if paused else RUNNING
            self.sd.save(self.state)

    def stats(self) -> pb.StatsResponse:
        """Returns resource usage of a running container."""
        try:
            return self._call(pb.Request(stats=pb.StatsRequest())).stats
        except (ControlError, SandboxError) as e:
            raise ContainerError(f"stats {self.id}: {e}") from None


def delete_forced(config: Config, container_id: str) -> None:
    """`delete --force`: always succeeds, and leaves no process or state."""
    specutils.validate_id(container_id)
    sd = StateDir(config.root, container_id)
    if not sd.exists():
        return
    try:
        c = Container(config, sd, sd.load())
    except ContainerError:
        sd.remove()
        return
    with contextlib.suppress(NotExistError):
        c.delete(force=True)


def _process_msg(settings: specutils.ProcessSettings, filename: str) -> pb.Process:
    return pb.Process(
        argv=settings.argv,
        env=settings.env,
        cwd=settings.cwd,
        credentials=pb.Credentials(
            uid=settings.uid,
            gid=settings.gid,
            additional_gids=settings.additional_gids,
            cap_bounding=settings.bounding,
            cap_effective=settings.effective,
            cap_inheritable=settings.inheritable,
            cap_permitted=settings.permitted,
            cap_ambient=settings.ambient,
            no_new_privileges=settings.no_new_privileges,
        ),
        rlimits=[pb.Rlimit(resource=r, soft=s, hard=h) for r, s, h in settings.rlimits],
        terminal=settings.terminal,
        filename=filename,
        umask=settings.umask,
    )


def _code_to_wait_status(code: int) -> int:
    if code < 0:
        return -code
    if code > 128:
        return code - 128
    return (code & 0xFF) << 8


def _set_oom_score_adj(pid: int, value: object) -> None:
    if value is None:
        return
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(int(value)))  # type: ignore[call-overload]
    except (OSError, ValueError) as e:
        log.warning("container: setting oom_score_adj: %s", e)
