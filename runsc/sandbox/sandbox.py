"""Starting the sandbox process, and talking to it.

`spawn` starts `runsc boot` as init of a new PID namespace, a child of the
calling runsc, in a session of its own, and waits until it says the
container is created (see runsc/boot/boot.py for what it is handed). The
PID namespace is entered for that one child only: runsc unshares it, starts
the child, and returns to its own namespace with setns, so that hooks and
anything else it starts later run in the host's.

`call` sends one control request to a running sandbox.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pkg.abi.linux import prctl as PR
from pkg.abi.linux import sched as SC
from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.server import ControlError
from pkg.unet import unet
from runsc.boot import syscalls
from runsc.config import Config

# What the sandbox writes on its stderr pipe once the container is created
# (runsc/boot/boot.py writes it).
READY_LINE = "runsc-sandbox-ready"

# How long a sandbox may take to boot.
BOOT_TIMEOUT_SECONDS = 60.0

# How long a request may wait for the sandbox to accept it.
CONNECT_TIMEOUT_SECONDS = 10.0


class SandboxError(Exception):
    """SandboxError: the sandbox could not be started or reached."""


@dataclass(slots=True)
class SpawnArgs:
    """SpawnArgs is what the sandbox process is started with."""

    container_id: str
    bundle: str
    # The checked spec, as JSON.
    spec: bytes
    # The init executable, open for reading.
    exec_fd: int
    # The container's descriptors 0, 1 and 2.
    stdio: list[int]
    # The listening control socket's descriptor.
    control_fd: int
    # The exit status file, open for writing.
    exit_fd: int
    # stdio is a terminal made for the container.
    console: bool = False
    # Die with the calling runsc (`run` without --detach, `do`).
    attached: bool = False
    extra_flags: list[str] = field(default_factory=list)


def wait_status_to_exit_code(status: int) -> int:
    """Maps a wait status to the exit code a shell would report (a death
    by signal as 128 + the signal's number)."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


def runsc_command() -> list[str]:
    """Returns the command that runs this runsc's Python entry point
    directly: without site initialisation (-S: runsc_env passes this
    process's module path, site-packages included) and without the script's
    directory on sys.path (-P)."""
    here = os.path.dirname(os.path.abspath(__file__))
    main = os.path.join(os.path.dirname(here), "main.py")
    return [sys.executable, "-S", "-P", main]


def runsc_env() -> dict[str, str]:
    """Returns the environment for a runsc child: only what Python needs
    to find runsc's modules."""
    paths = [p for p in sys.path if p and os.path.isabs(p)]
    return {"PYTHONPATH": os.pathsep.join(paths), "PATH": os.defpath}


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (subprocess's preexec_fn): the
    # parent waits for the exec, so it is alive when this is set.
    syscalls.prctl(PR.PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    config: Config,
    args: SpawnArgs,
    on_started: Callable[[subprocess.Popen], None] | None = None,
) -> subprocess.Popen:
    """Starts the sandbox process and waits until the container is created.

    on_started is called with the process as soon as it exists, before the
    wait (to record its pid, so that it can be found and killed even if this
    runsc dies meanwhile).

    Raises:
        SandboxError: the sandbox failed to start; the message says why. No
            process is left behind.
    """
    spec_fd = os.memfd_create("runsc-spec", os.MFD_CLOEXEC)
    os.write(spec_fd, args.spec)
    os.lseek(spec_fd, 0, os.SEEK_SET)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    cmd = [
        *runsc_command(),
        *config.to_flags(),
        "boot",
        f"--bundle={args.bundle}",
        f"--spec-fd={spec_fd}",
        f"--exec-fd={args.exec_fd}",
        f"--control-fd={args.control_fd}",
        f"--exit-fd={args.exit_fd}",
        f"--stdio-fds={','.join(str(fd) for fd in args.stdio)}",
        *(["--console"] if args.console else []),
        *args.extra_flags,
        args.container_id,
    ]
    pass_fds = (spec_fd, args.exec_fd, args.control_fd, args.exit_fd, *args.stdio)

    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(SC.CLONE_NEWPID)
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=ready_w,
                pass_fds=pass_fds,
                start_new_session=True,
                cwd="/",
                env=runsc_env(),
                # runsc is single-threaded, so preexec_fn is safe here.
                preexec_fn=_die_with_parent if args.attached else None,  # noqa: PLW1509
            )
        finally:
            syscalls.setns(own_pidns, SC.CLONE_NEWPID)
    finally:
        os.close(own_pidns)
        os.close(ready_w)
        os.close(spec_fd)

    try:
        if on_started is not None:
            on_started(proc)
        _wait_ready(proc, ready_r)
    except BaseException:
        kill(proc)
        raise
    finally:
        os.close(ready_r)
    return proc


def _wait_ready(proc: subprocess.Popen, fd: int) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SandboxError("the sandbox did not start in time")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        out += chunk
        lines = out.decode(errors="replace").splitlines()
        if READY_LINE in lines:
            return
        if not chunk:
            break
    proc.wait()
    text = "\n".join(line for line in lines if line.strip()).strip()
    if not text:
        text = f"the sandbox exited with status {proc.returncode}"
    raise SandboxError(text)


def kill(proc: subprocess.Popen) -> None:
    """Kills a sandbox process that is this process's child and reaps it."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def call(
    socket_path: str,
    request: pb.Request,
    fds: tuple[int, ...] = (),
    timeout: float | None = CONNECT_TIMEOUT_SECONDS,
) -> pb.Response:
    """Sends one control request and returns the response.

    Raises:
        ControlError: the sandbox refused the request.
        SandboxError: the sandbox cannot be reached.
    """
    try:
        conn = unet.connect(socket_path, timeout)
    except OSError as e:
        raise SandboxError(f"cannot reach the sandbox: {e.strerror or e}") from None
    with conn:
        try:
            conn.send(request.SerializeToString(), fds)
            payload, rfds = conn.recv()
        except (OSError, EOFError) as e:
            raise SandboxError(f"the sandbox went away: {e}") from None
    for fd in rfds:
        os.close(fd)
    resp = pb.Response()
    resp.ParseFromString(payload)
    if resp.error:
        raise ControlError(resp.error, resp.errno)
    return resp
