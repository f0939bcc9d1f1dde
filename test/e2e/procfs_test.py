"""Programs that read /proc and /sys under `runsc do` see what they see
natively, from the sentry's own state: the sentry opens no host path to
answer them (--TESTONLY-forbid-host-open)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")


def runfile(path: str) -> str:
    """Returns the absolute path of a runfiles path (or of the built file,
    when run from the worktree)."""
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "bazel-bin", path)


RUNSC = os.environ.get("E2E_RUNSC") or runfile("runsc/runsc")
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def run(argv: list[str], sandboxed: bool, tmp_path) -> subprocess.CompletedProcess:
    if sandboxed:
        argv = [
            RUNSC,
            f"--root={tmp_path}/state",
            "--TESTONLY-forbid-host-open",
            "do",
            *argv,
        ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, check=False
    )


def sandboxed_ok(argv: list[str], tmp_path) -> str:
    proc = run(argv, True, tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_readlink_self_exe(tmp_path):
    argv = ["/bin/readlink", "/proc/self/exe"]
    assert sandboxed_ok(argv, tmp_path) == run(argv, False, tmp_path).stdout


def test_cpu_count_matches_affinity(tmp_path):
    script = (
        "import os, multiprocessing; print(os.cpu_count(), multiprocessing.cpu_count())"
    )
    out = sandboxed_ok([PYTHON, "-c", script], tmp_path).split()
    n = str(len(os.sched_getaffinity(0)))
    assert out == [n, n]


def test_ps_lists_the_sandbox_processes(tmp_path):
    if not os.path.exists("/bin/ps"):
        pytest.skip("no ps")
    out = sandboxed_ok(
        ["/bin/sh", "-c", "sleep 5 & /bin/ps -eo pid,ppid,stat,vsz,comm"],
        tmp_path,
    )
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "PPID", "STAT", "VSZ", "COMMAND"]
    rows = {f[4]: f for f in (line.split() for line in lines[1:])}
    assert rows["sh"][0] == "1"
    assert rows["sleep"][1] == "1"
    assert rows["ps"][1] == "1"
    assert int(rows["ps"][3]) > 0


def test_shell_reads_proc_and_dev_links(tmp_path):
    script = (
        "set -e; cat /proc/self/status /proc/self/maps /proc/cpuinfo "
        "/proc/meminfo /proc/stat /proc/uptime /proc/loadavg >/dev/null; "
        "ls -l /proc/self/fd/ >/dev/null; echo out >/dev/stdout; "
        "echo err >/dev/stderr; cat /proc/sys/kernel/osrelease"
    )
    proc = run(["/bin/sh", "-c", script], True, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "out"
    assert proc.stderr.splitlines()[-1] == "err"


def test_free(tmp_path):
    if not os.path.exists("/usr/bin/free"):
        pytest.skip("no free")
    out = sandboxed_ok(["/usr/bin/free"], tmp_path).splitlines()
    assert out[1].split()[0] == "Mem:"
    assert int(out[1].split()[1]) > 0
