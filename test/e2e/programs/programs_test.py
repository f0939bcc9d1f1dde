"""Real programs give the same output and exit status under `runsc do` as
natively, on the host root and on a Debian bookworm root.

PROGRAMS_ROOT chooses the root: `host` runs each case natively and under
`runsc do`; `debian` runs it natively with chroot(8) into the root made by
tools/debian_rootfs.sh and under `runsc do --rootfs`. Each case (cases.py)
is a bash script run in an empty scratch directory under /var/tmp (inside
the root for `debian`); the sandbox's writes land in its overlay, so the
native run, which comes second, starts from the same empty directory.

PROGRAMS_CASES (comma-separated names) narrows the matrix for development;
E2E_RUNSC names another runsc binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CASES, Case

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")


def runfile(path: str) -> str:
    """Returns the absolute path of a runfiles path (or of the source or
    built file, when run from the worktree)."""
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    if os.path.exists(os.path.join(top, path)):
        return os.path.join(top, path)
    return os.path.join(top, "bazel-bin", path)


# Never Debian's /usr/bin/runsc (gVisor): always the one built here.
RUNSC = os.environ.get("E2E_RUNSC") or runfile("runsc/runsc")
ROOT_KIND = os.environ.get("PROGRAMS_ROOT", "host")
# The environment of every run, natively and sandboxed; HOME is the scratch
# directory (run_native, run_sandboxed), so no ~/.bashrc of the host's runs.
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "TERM": "dumb",
}
# One run of a case; a loaded 2-core machine makes gcc and node slow.
TIMEOUT = 240


def _debian_root() -> str:
    try:
        proc = subprocess.run(
            [runfile("tools/debian_rootfs.sh")],
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("tools/debian_rootfs.sh timed out")
    if proc.returncode != 0:
        pytest.skip(f"no Debian root (tools/debian_rootfs.sh): {proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def root() -> str:
    """The host directory that is the programs' root."""
    if ROOT_KIND == "debian":
        return _debian_root()
    return "/"


@pytest.fixture
def scratch(root: str):
    """An empty scratch directory under the root's /var/tmp; yields its
    path inside the root."""
    parent = os.path.join(root, "var", "tmp")
    top = tempfile.mkdtemp(prefix="pyvisor-programs-", dir=parent)
    work = os.path.join(top, "work")
    os.mkdir(work)
    try:
        yield "/" + os.path.relpath(work, root)
    finally:
        shutil.rmtree(top, ignore_errors=True)


_CHROOT = """
mount -t proc proc "$1/proc" &&
mount -t tmpfs tmpfs "$1/tmp" &&
mount --rbind /sys "$1/sys" &&
mount --rbind /dev "$1/dev" &&
exec chroot "$1" /usr/bin/env -C "$2" /bin/bash -c "$3"
"""


def run_native(root: str, cwd: str, script: str) -> subprocess.CompletedProcess:
    if root == "/":
        argv = ["/bin/bash", "-c", script]
        host_cwd = cwd
    else:
        # A container sees its own /proc, /sys, /dev and /tmp: mount them in
        # a mount namespace of the run's own, so the cached root is
        # untouched.
        argv = [
            "unshare",
            "--mount",
            "--propagation=private",
            "/bin/sh",
            "-c",
            _CHROOT,
            "sh",
            root,
            cwd,
            script,
        ]
        host_cwd = "/"
    return subprocess.run(
        argv,
        check=False,
        cwd=host_cwd,
        env=dict(ENV, HOME=cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )


def run_sandboxed(
    root: str, cwd: str, script: str, state: str
) -> subprocess.CompletedProcess:
    argv = [RUNSC, f"--root={state}", "do"]
    if root == "/":
        host_cwd = cwd
    else:
        argv += ["--rootfs", root, "--cwd", cwd]
        host_cwd = "/"
    argv += ["/bin/bash", "-c", script]
    return subprocess.run(
        argv,
        check=False,
        cwd=host_cwd,
        env=dict(ENV, HOME=cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )


def _params() -> list:
    only = os.environ.get("PROGRAMS_CASES")
    names = set(only.split(",")) if only else None
    # Bazel's test sharding: this shard runs every n-th case.
    shards = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    shard = int(os.environ.get("TEST_SHARD_INDEX", "0"))
    if "TEST_SHARD_STATUS_FILE" in os.environ:
        open(os.environ["TEST_SHARD_STATUS_FILE"], "w").close()
    params = []
    for i, case in enumerate(CASES):
        if names is not None and case.name not in names:
            continue
        if i % shards != shard:
            continue
        marks = []
        if case.xfail and ROOT_KIND in case.xfail_on:
            marks.append(pytest.mark.xfail(reason=case.xfail, strict=True))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_program(case: Case, root: str, scratch: str) -> None:
    state = tempfile.mkdtemp(prefix="pyvisor-programs-state-", dir="/var/tmp")
    try:
        got = run_sandboxed(root, scratch, case.script, state)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    want = run_native(root, scratch, case.script)

    def show(p: subprocess.CompletedProcess) -> str:
        return (
            f"status {p.returncode}\n--- stdout\n{p.stdout.decode(errors='replace')}"
            f"--- stderr\n{p.stderr.decode(errors='replace')}"
        )

    detail = f"\n=== native\n{show(want)}\n=== runsc\n{show(got)}"
    assert got.stdout == want.stdout, "stdout differs" + detail
    if case.stderr:
        assert got.stderr == want.stderr, "stderr differs" + detail
    assert got.returncode == want.returncode, "exit status differs" + detail


@pytest.mark.skipif(ROOT_KIND != "host", reason="runs once, on the host root")
def test_strace_shows_why_a_program_fails() -> None:
    # Without --debug-log, --strace lines go to the command's stderr: a
    # failed open shows its errno, and a crash shows the fault (F) line.
    state = tempfile.mkdtemp(prefix="pyvisor-programs-state-", dir="/var/tmp")
    try:
        proc = subprocess.run(
            [
                RUNSC,
                f"--root={state}",
                "--strace",
                "do",
                "/usr/bin/python3",
                "-c",
                "import ctypes\n"
                "try:\n    open('/nonexistent-pyvisor')\n"
                "except OSError:\n    ctypes.string_at(8)",
            ],
            check=False,
            cwd="/var/tmp",
            env=ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert proc.returncode == 128 + 11, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert any(
        '"/nonexistent-pyvisor"' in line
        and " X openat(" in line
        and "errno=2 (No such file or directory)" in line
        for line in lines
    ), proc.stderr[-2000:]
    assert any(" python3 F SIGSEGV " in line and "at 0x8 " in line for line in lines), (
        proc.stderr[-2000:]
    )
