"""strace and gdb inside the sandbox, under `runsc do`: ptrace(2) between
sandboxed tasks is what they run on.

Each check runs the same command natively and sandboxed and compares what
does not depend on addresses or pids. The programs are the host's
(/usr/bin/strace, /usr/bin/gdb, which tools/setup.sh installs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")
_TIMEOUT = 180


def _runfile(path: str) -> str:
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "bazel-bin", path)


RUNSC = os.environ.get("E2E_RUNSC") or _runfile("runsc/runsc")

_CRASH_C = r"""
#include <stdio.h>
static int deref(int *p) { return *p; }
int main(void) {
  int *p = 0;
  printf("about to crash\n");
  fflush(stdout);
  return deref(p);
}
"""


@pytest.fixture
def tmp() -> Iterator[str]:
    # Under /var/tmp: the sandbox's /tmp is its own tmpfs.
    d = tempfile.mkdtemp(prefix="debuggers-test-", dir="/var/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (tools/setup.sh installs it)")
    return path


def _run(argv: list[str], cwd: str, sandboxed: bool) -> subprocess.CompletedProcess:
    if sandboxed:
        argv = [RUNSC, "do", *argv]
    return subprocess.run(
        argv, capture_output=True, cwd=cwd, timeout=_TIMEOUT, check=False
    )


def _both(argv: list[str], cwd: str) -> tuple[subprocess.CompletedProcess, ...]:
    return _run(argv, cwd, False), _run(argv, cwd, True)


def _show(p: subprocess.CompletedProcess) -> str:
    return (
        f"status {p.returncode}\n--- stdout\n{p.stdout.decode(errors='replace')}"
        f"--- stderr\n{p.stderr.decode(errors='replace')}"
    )


def test_strace_true(tmp: str) -> None:
    strace = _need("strace")
    native, got = _both([strace, "-f", "/bin/true"], tmp)
    detail = f"\n=== native\n{_show(native)}\n=== runsc\n{_show(got)}"
    assert got.returncode == native.returncode == 0, detail
    err = got.stderr.decode()
    assert 'execve("/bin/true", ["/bin/true"]' in err, detail
    assert "exit_group(0)" in err, detail
    assert err.rstrip().endswith("+++ exited with 0 +++"), detail


def test_strace_follows_forks(tmp: str) -> None:
    # sh forks for the first command; -f follows it. The child's lines
    # carry its pid, which differs: drop the prefix and sort.
    strace = _need("strace")
    argv = [
        strace,
        "-f",
        "-qq",
        "-e",
        "trace=exit_group,kill",
        "-e",
        "signal=none",
        "sh",
        "-c",
        "/bin/true; exit 3",
    ]
    native, got = _both(argv, tmp)

    def lines(p: subprocess.CompletedProcess) -> list[str]:
        out = p.stderr.decode().splitlines()
        return sorted(re.sub(r"^\[pid +\d+\] ", "", x).split("=")[0] for x in out)

    detail = f"\n=== native\n{_show(native)}\n=== runsc\n{_show(got)}"
    assert got.returncode == native.returncode == 3, detail
    assert lines(got) == lines(native), detail


def _crash_binary(tmp: str) -> str:
    src = os.path.join(tmp, "crash.c")
    with open(src, "w") as f:
        f.write(_CRASH_C)
    exe = os.path.join(tmp, "crash")
    subprocess.run(["gcc", "-g", "-O0", "-o", exe, src], check=True, timeout=_TIMEOUT)
    return exe


def _frames(p: subprocess.CompletedProcess) -> list[str]:
    """The signal and backtrace lines of gdb's output, addresses removed."""
    out = []
    for line in p.stdout.decode(errors="replace").splitlines():
        if line.startswith(("#", "Program received", "Breakpoint 1,")):
            out.append(re.sub(r"0x[0-9a-f]+", "ADDR", line))
    return out


def test_gdb_backtrace_of_a_crash(tmp: str) -> None:
    gdb = _need("gdb")
    exe = _crash_binary(tmp)
    argv = [gdb, "-nx", "-batch", "-ex", "run", "-ex", "bt", exe]
    native, got = _both(argv, tmp)
    detail = f"\n=== native\n{_show(native)}\n=== runsc\n{_show(got)}"
    frames = _frames(got)
    assert frames == _frames(native), detail
    assert any("SIGSEGV" in x for x in frames), detail
    assert any(x.startswith("#0") and "deref (p=ADDR)" in x for x in frames), detail
    assert any(x.startswith("#1") and "main ()" in x for x in frames), detail
    assert b"about to crash" in got.stdout, detail


def test_gdb_breakpoint_and_step(tmp: str) -> None:
    gdb = _need("gdb")
    exe = _crash_binary(tmp)
    argv = [
        gdb,
        "-nx",
        "-batch",
        "-ex",
        "break deref",
        "-ex",
        "run",
        "-ex",
        "stepi",
        "-ex",
        "bt 1",
        "-ex",
        "continue",
        exe,
    ]
    native, got = _both(argv, tmp)
    detail = f"\n=== native\n{_show(native)}\n=== runsc\n{_show(got)}"
    frames = _frames(got)
    assert frames == _frames(native), detail
    assert any(x.startswith("Breakpoint 1, deref") for x in frames), detail
    assert any("SIGSEGV" in x for x in frames), detail
