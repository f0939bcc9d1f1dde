"""A sandboxed program waiting on standard input (a host pipe) and a sandbox
file at once, with poll, ppoll, select, epoll and a signalfd, wakes when the
host side writes or signals, and does not spin while it waits; and blocking
calls end as Linux's do when a signal arrives (EINTR or a transparent
restart, the temporary signal masks restored). The same programs run
natively as the reference; signals reach the sandbox through runsc, which
forwards SIGUSR1 to the container."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _runfile(path: str) -> str:
    return os.path.join(os.environ.get("TEST_SRCDIR", ""), "pyvisor", path)


RUNSC = _runfile("runsc/runsc")
PROGRAM = _runfile("test/e2e/events/wait_stdin")
INTERRUPT = _runfile("test/e2e/events/interrupt")
_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """Returns the CPU time used so far by pid and its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total / _TICK


@contextmanager
def _started(
    sandboxed: bool, mode: str, program: str = PROGRAM
) -> Iterator[subprocess.Popen[str]]:
    root = tempfile.mkdtemp(prefix="runsc-root-")
    logs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.mkdtemp()
    argv = [program, mode]
    if sandboxed:
        argv = [RUNSC, f"--root={root}", "--debug", f"--debug-log={logs}/", "do", *argv]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _send(proc: subprocess.Popen[str], data: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(data)
    proc.stdin.flush()


def _finish(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    return out.strip()


@pytest.mark.parametrize("sandboxed", [False, True], ids=["native", "runsc"])
@pytest.mark.parametrize("mode", ["poll", "ppoll", "select", "epoll"])
def test_wakes_on_stdin(sandboxed: bool, mode: str) -> None:
    with _started(sandboxed, mode) as proc:
        # Waiting costs no CPU: sample the whole process tree while idle.
        before = _tree_cpu_seconds(proc.pid)
        time.sleep(0.3)
        spent = _tree_cpu_seconds(proc.pid) - before
        assert spent < 0.15, f"{spent:.2f}s of CPU while waiting"
        _send(proc, "x")
        assert _finish(proc) == "stdin x"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["native", "runsc"])
def test_edge_triggered_stdin(sandboxed: bool) -> None:
    with _started(sandboxed, "epoll_et") as proc:
        _send(proc, "a")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "quiet"
        _send(proc, "b")
        assert _finish(proc) == "stdin a"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["native", "runsc"])
def test_signalfd_wakes_poll(sandboxed: bool) -> None:
    with _started(sandboxed, "signalfd") as proc:
        proc.send_signal(signal.SIGUSR1)
        assert _finish(proc) == f"signal {int(signal.SIGUSR1)}"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["native", "runsc"])
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # Reads fail with ERESTARTSYS: EINTR without SA_RESTART...
        ("eventfd_eintr", "eintr handled"),
        ("signalfd_eintr", "eintr handled"),
        # ...and restart with it (the handler fed the eventfd meanwhile).
        ("eventfd_restart", "value 5"),
        # poll, select and epoll_wait fail with EINTR even with SA_RESTART.
        ("poll_eintr", "eintr handled"),
        ("select_eintr", "eintr handled"),
        ("epoll_eintr", "eintr handled"),
        # The handler runs under the temporary mask, and the old mask, which
        # blocks SIGUSR1, is back afterwards.
        ("ppoll_mask", "eintr handled masked"),
        ("epoll_pwait_mask", "eintr handled masked"),
    ],
)
def test_signal_interrupts(sandboxed: bool, mode: str, expected: str) -> None:
    with _started(sandboxed, mode, INTERRUPT) as proc:
        # The program may not be blocked yet: a signal before the call would
        # be handled before it and the call would then wait forever, so
        # keep signalling until it reports.
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        out = b""
        deadline = time.monotonic() + 30
        while b"\n" not in out:
            assert time.monotonic() < deadline, "the call never returned"
            proc.send_signal(signal.SIGUSR1)
            ready, _w, _x = select.select([fd], [], [], 0.2)
            if ready:
                out += os.read(fd, 4096)
        assert proc.wait(timeout=60) == 0
        assert out.decode().strip() == expected
