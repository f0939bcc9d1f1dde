"""Configuring the sandbox process, and talking to it.

`spawn` starts the container's gofer (gofer.py), hands a sandbox process
(started early by launch.py) its configuration and the gofer connections,
and waits until it says the container is created; see runsc/boot/boot.py
for what it does with them. `call` sends one control
request to a running sandbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.errors import ControlError
from pkg.unet import unet
from runsc.config import Config
from runsc.sandbox import gofer, launch
from runsc.sandbox.cgroup import Plan
from runsc.sandbox.errors import SandboxError

log = logging.getLogger(__name__)

__all__ = ["SandboxError", "SpawnArgs", "call", "kill", "reap_gofers", "spawn"]

# How long a request may wait for the sandbox to accept it.
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(slots=True)
class SpawnArgs:
    """SpawnArgs is what the sandbox process is configured with."""

    container_id: str
    bundle: str
    # The checked spec, as JSON.
    spec: bytes
    # The init executable's path in the container.
    executable: str
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
    # The container's host cgroups, made already: the sandbox and the
    # gofer join them before they start anything.
    cgroup: Plan | None = None


def spawn(
    config: Config,
    args: SpawnArgs,
    on_started: Callable[[subprocess.Popen], None] | None = None,
) -> subprocess.Popen:
    """Configures a sandbox process and waits until the container is
    created.

    on_started is called with the process first (to record its pid, so that
    it can be found and killed even if this runsc dies meanwhile).

    Raises:
        SandboxError: the sandbox failed to start; the message says why. No
            process is left behind.
    """
    launched = launch.take()
    spec_fd = os.memfd_create("runsc-spec", os.MFD_CLOEXEC)
    conns = []
    try:
        if on_started is not None:
            on_started(launched.proc)
        if args.cgroup is not None:
            # It waits for its configuration: no stub exists yet, and the
            # ones it makes follow it.
            args.cgroup.join(launched.proc.pid)
        # The gofer serves the container's files; it exits once the sandbox
        # has closed every connection (or never got them).
        gofer_proc, conns = gofer.start_for_spec(
            config, json.loads(args.spec), args.bundle, attached=args.attached
        )
        if args.cgroup is not None:
            # Still importing its modules: it has started nothing.
            args.cgroup.join(gofer_proc.pid)
        if args.attached:
            _attached_gofers.append(gofer_proc)
        os.write(spec_fd, args.spec)
        os.lseek(spec_fd, 0, os.SEEK_SET)
        msg = pb.BootConfig(
            global_flags=config.to_flags(),
            container_id=args.container_id,
            bundle=args.bundle,
            console=args.console,
            attached=args.attached,
            executable=args.executable,
        )
        fds = [
            spec_fd,
            args.control_fd,
            args.exit_fd,
            *args.stdio,
            *(c.fileno() for c in conns),
        ]
        # A sandbox that died already explains itself on its stderr, which
        # wait_ready reads.
        with contextlib.suppress(OSError):
            unet.Conn(launched.config).send(msg.SerializeToString(), fds)
    except BaseException:
        launched.abandon()
        raise
    finally:
        os.close(spec_fd)
        for c in conns:
            c.close()
    launch.wait_ready(launched)
    return launched.proc


# Gofers of attached sandboxes: children of this runsc, which reaps them
# (reap_gofers) once their sandbox has exited, so none outlives the command.
_attached_gofers: list[subprocess.Popen] = []

# How long a gofer may take to notice that its sandbox is gone.
_GOFER_EXIT_SECONDS = 5.0


def reap_gofers() -> None:
    """Waits for the gofers of attached sandboxes that have exited (each
    exits once the sandbox's connections are closed), killing any that
    does not go within _GOFER_EXIT_SECONDS."""
    while _attached_gofers:
        proc = _attached_gofers.pop()
        try:
            proc.wait(timeout=_GOFER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("sandbox: gofer %d outlived its sandbox; killed", proc.pid)
            kill(proc)


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
