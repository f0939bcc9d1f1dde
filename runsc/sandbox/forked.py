"""Running a runsc verb in a forked copy of this process instead of a new
interpreter.

A new interpreter for `runsc boot` costs its start (about 10 ms of CPU) and
the imports this runsc has already made (runsc.main, config, logging,
argparse: about 30 ms), and more on a loaded machine; `runsc do` started two
(docs/performance.md). A fork shares what is loaded and imports only the
verb's own modules.

The child is made to look like the new process an exec would have given:

- its descriptors are 0, 1 and 2 (as given) and pass_fds, nothing else: the
  parent's log files are closed through their handlers first (a handler
  flushes into its descriptor when logging shuts down, and that number may
  name another file by then), then every other descriptor by number;
- its environment is exactly env (the parent's strings on the stack are
  zeroed), its working directory cwd;
- the signal handlers this runsc installed are back to their defaults, and
  no wakeup descriptor is set;
- a new session, and death with the parent when asked (checked against a
  pidfd of the parent, which works from another PID namespace too);
- objects of the parent stay alive until the child exits: it never returns
  to the caller's frames, and gc.freeze() keeps the collector from
  finalising the parent's garbage (a socket's finaliser would close a
  descriptor number that the child may have reused).

What a fork cannot give is a new address-space layout: the child's
interpreter, heap and libraries are where this runsc's are (ASLR is
per-exec). That is why only the sandbox is forked, and the gofer, which the
sentry talks to and a subverted sentry would attack, is still a new
interpreter (runsc/sandbox/gofer.py): the sentry's layout reveals nothing
about the gofer's.

Shortcomings: the sandbox process shares the layout of the runsc that
forked it, which for `run` and `do` waits for it to the end; that runsc
reads little from the sandbox (its stderr text until it is ready, the
wait status, the exit-status file), but a subverted sentry knows where
that code lives. And the child's heap holds what the parent had freed
(see _scrub_initial_environment).

Preconditions: this runsc is single-threaded (it is until the verb runs the
container).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable

from pkg.abi.linux import prctl as PR
from runsc.boot import syscalls

__all__ = ["Forked", "fork_verb"]


class Forked:
    """Forked is a forked child, with the part of subprocess.Popen's
    interface that runsc uses for its sandbox process."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:
                # Reaped elsewhere: as Popen, report success.
                self.returncode = 0
                return 0
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        """Returns the exit code, or None while the child runs."""
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the child and returns its exit code (negative for a
        death by signal, as Popen).

        Raises:
            subprocess.TimeoutExpired: timeout seconds passed first.
        """
        if timeout is None:
            while True:
                try:
                    code = self._reap(0)
                except InterruptedError:
                    continue
                assert code is not None
                return code
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        return code

    def send_signal(self, sig: int) -> None:
        """Sends sig unless the child has been reaped."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        """Sends SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """Sends SIGTERM."""
        self.send_signal(signal.SIGTERM)


def fork_verb(
    argv: list[str],
    *,
    stdio: tuple[int | None, int | None, int | None],
    pass_fds: Iterable[int],
    env: dict[str, str],
    cwd: str = "/",
    die_with_parent: bool = True,
) -> Forked:
    """Forks a child that runs `runsc ARGV` (runsc.main.main) and exits.

    Args:
        argv: the command line after the program name.
        stdio: what becomes the child's descriptors 0, 1 and 2 (None: the
            file of that number here; subprocess.DEVNULL: /dev/null).
        pass_fds: further descriptors the child keeps, at their numbers.
        env: the child's whole environment.
        cwd: its working directory.
        die_with_parent: SIGKILL the child when this process dies.
    """
    keep = sorted({0, 1, 2, *pass_fds})
    # Output buffered here would be written a second time by the child.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    parent_fd = os.pidfd_open(os.getpid()) if die_with_parent else -1
    try:
        pid = os.fork()
        if pid == 0:
            status = 127
            try:
                status = _child(argv, stdio, keep, env, cwd, parent_fd)
            except BaseException:  # never return into the parent's code
                with contextlib.suppress(BaseException):
                    import traceback  # noqa: PLC0415 (only on this failure)

                    traceback.print_exc()
            finally:
                os._exit(status)
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)
    return Forked(pid)


def _scrub_initial_environment() -> None:
    """Zeroes the environment strings the kernel put on this process's stack
    at exec (the parent's: /proc/PID/environ shows them, and a new
    interpreter would not have them). os.environ no longer refers to them.

    Shortcoming: copies that Python made of them at start-up (os.environ's
    old keys and values, freed above) stay in freed heap memory until it
    is reused, as does anything else the parent had freed.
    """
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # Fields 50 and 51 of stat(5), counted after the command's ")" from 3.
    start, end = int(fields[50 - 3]), int(fields[51 - 3])
    if 0 < start < end:
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(bytes(end - start))


def _child(
    argv: list[str],
    stdio: tuple[int | None, int | None, int | None],
    keep: list[int],
    env: dict[str, str],
    cwd: str,
    parent_fd: int,
) -> int:
    gc.freeze()
    os.setsid()
    if parent_fd >= 0:
        syscalls.prctl(PR.PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died before the line above.
        if select.select([parent_fd], [], [], 0)[0]:
            return 1

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError, TypeError):
            h = signal.getsignal(sig)
            if callable(h) and h is not signal.default_int_handler:
                signal.signal(sig, signal.SIG_DFL)

    devnull = -1
    for target, given in enumerate(stdio):
        fd = given
        if given == subprocess.DEVNULL:
            if devnull < 0:
                devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            fd = devnull
        if fd is not None and fd != target:
            os.dup2(fd, target)
    lo = 0
    for fd in keep:
        if fd > lo:
            os.closerange(lo, fd)
        os.set_inheritable(fd, True)
        lo = fd + 1
    os.closerange(lo, 1 << 30)

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    _scrub_initial_environment()
    sys.argv[1:] = argv

    from runsc.main import main  # noqa: PLC0415 (loaded already)

    code = main(argv)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code & 0xFF if isinstance(code, int) else 1
