"""Starting the sandbox process early.

Both runsc and the sandbox process are Python programs, and most of their
start-up time is Python importing modules. So runsc starts the sandbox
process first thing when a verb will need one (create, run, do), before
importing the modules the verb itself needs: the two import in parallel.
The sandbox process, once its modules are loaded, waits on a socket for its
configuration (sandbox.py sends it) and exits quietly if none comes.

It is a forked copy of this runsc that runs the `boot` verb
(runsc/sandbox/forked.py: no new interpreter, and only the sentry's modules
to import), init of a new PID namespace, in a session of its own. runsc
unshares the PID namespace only for that child: it returns to its own
namespace with setns at once, so that hooks and anything else it starts
later run in the host's. Until it is configured the
sandbox dies with this runsc (PR_SET_PDEATHSIG), so an early failure of the
verb leaves nothing behind; a detached sandbox then clears that.

This module loads nothing heavy: it runs before the verb's imports. Just
before the fork it loads the modules that the verb and the sandbox process
both need (SHARED_MODULES), so that they are loaded once.
"""

from __future__ import annotations

import importlib
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from pkg.abi.linux import sched as SC
from runsc.boot import syscalls
from runsc.sandbox import forked
from runsc.sandbox.errors import SandboxError

__all__ = ["Launched", "SandboxError", "launch", "take", "wait_ready"]

# What the sandbox writes on its stderr pipe once the container is created
# (runsc/boot/boot.py writes it).
READY_LINE = "runsc-sandbox-ready"

# How long a sandbox may take to boot.
BOOT_TIMEOUT_SECONDS = 60.0


@dataclass(slots=True)
class Launched:
    """Launched is a sandbox process waiting for its configuration."""

    proc: forked.Forked
    # runsc's end of the configuration socket.
    config: socket.socket
    # The read end of the sandbox's stderr pipe.
    ready_fd: int

    def abandon(self) -> None:
        """Ends a sandbox that will not be configured: without its
        configuration it exits at once; it is reaped here."""
        self.config.close()
        os.close(self.ready_fd)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_early: Launched | None = None


def wait_status_to_exit_code(status: int) -> int:
    """Maps a wait status to the exit code a shell would report (a death
    by signal as 128 + the signal's number)."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


def runsc_command() -> list[str]:
    """Returns the command that runs this runsc again: its launcher
    (runsc/launcher.sh.in), which sets sys.argv[0] to its own path, or else
    the Python entry point directly, without site initialisation (-S:
    runsc_env passes this process's module path, site-packages included)
    and without the script's directory on sys.path (-P)."""
    if "runsc.launcher" in sys.modules and os.path.isfile(sys.argv[0]):
        return [os.path.abspath(sys.argv[0])]
    here = os.path.dirname(os.path.abspath(__file__))
    main = os.path.join(os.path.dirname(here), "main.py")
    return [sys.executable, "-S", "-P", main]


def runsc_env() -> dict[str, str]:
    """Returns the environment for a runsc child: only what Python needs
    to find runsc's modules."""
    paths = [p for p in sys.path if p and os.path.isabs(p)]
    return {"PYTHONPATH": os.pathsep.join(paths), "PATH": os.defpath}


# Modules that both the verb (this process, after the fork) and the sandbox
# process import: loaded once, before the fork, instead of once in each.
# protobuf and the control messages are most of it (about 15 ms of CPU).
SHARED_MODULES = (
    "json",
    "pkg.gofer.spec",
    "pkg.sentry.control.control_pb2",
    "pkg.unet.unet",
    "runsc.boot.signals",
    "runsc.specutils.spec",
)


def launch() -> Launched:
    """Starts a sandbox process that waits for its configuration."""
    for name in SHARED_MODULES:
        importlib.import_module(name)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(SC.CLONE_NEWPID)
        try:
            proc = forked.fork_verb(
                ["boot", f"--config-fd={theirs.fileno()}"],
                stdio=(subprocess.DEVNULL, subprocess.DEVNULL, ready_w),
                pass_fds=(theirs.fileno(),),
                env=runsc_env(),
                cwd="/",
            )
        finally:
            syscalls.setns(own_pidns, SC.CLONE_NEWPID)
    except BaseException:
        ours.close()
        os.close(ready_r)
        raise
    finally:
        os.close(own_pidns)
        os.close(ready_w)
        theirs.close()
    return Launched(proc, ours, ready_r)


def launch_early() -> None:
    """Starts the sandbox process for the verb about to run; take() hands
    it over. A failure here is left for the verb to meet again."""
    global _early
    try:
        _early = launch()
    except OSError:
        _early = None


def take() -> Launched:
    """Returns the sandbox process started early, or starts one now."""
    global _early
    launched, _early = _early, None
    return launched if launched is not None else launch()


def wait_ready(launched: Launched) -> None:
    """Waits until the sandbox says the container is created.

    Raises:
        SandboxError: it exited first (with what it wrote as the reason), or
            took too long; it has been killed and reaped.
    """
    proc, fd = launched.proc, launched.ready_fd
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    out = b""
    lines: list[str] = []
    try:
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
        raise SandboxError(text or f"the sandbox exited with status {proc.returncode}")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    finally:
        os.close(fd)
        launched.config.close()
