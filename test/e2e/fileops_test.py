"""File operations under `runsc do` behave as on Linux and, with the default
overlay, leave the host untouched.

Each test builds the same small tree twice on the host, runs a workload on
one copy natively and on the other in the sandbox, and compares what the
workload printed and what became of the trees.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator

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


# E2E_RUNSC overrides the binary under test (a development build).
RUNSC = os.environ.get("E2E_RUNSC") or runfile("runsc/runsc")
FILEOPS = os.environ.get("E2E_FILEOPS") or runfile("test/e2e/fileops")


def make_tree(top: str) -> None:
    """Makes the tree fileops.c expects."""
    os.makedirs(os.path.join(top, "dir", "sub"))
    os.makedirs(os.path.join(top, "emptydir"))
    for name, data in (
        ("keep.txt", b"keep\n"),
        ("old.txt", b"old contents\n"),
        ("gone.txt", b"gone\n"),
        ("dir/a.txt", b"A"),
        ("dir/sub/b.txt", b"B"),
    ):
        with open(os.path.join(top, name), "wb") as f:
            f.write(data)
    os.symlink("keep.txt", os.path.join(top, "link"))


def snapshot(top: str) -> dict[str, tuple]:
    """Returns the names, types, permissions, link counts and contents of a
    tree."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(p).encode()
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    content = f.read()
            else:
                content = b""
            nlink = st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0
            out[os.path.relpath(p, top)] = (st.st_mode, nlink, content)
    return out


@pytest.fixture
def base() -> Iterator[str]:
    # Not under /tmp: the sandbox has a /tmp of its own.
    parent = os.environ.get("TEST_TMPDIR", "/var/tmp")
    if os.path.abspath(parent).startswith("/tmp"):
        parent = "/var/tmp"
    d = tempfile.mkdtemp(prefix="fileops-", dir=parent)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_native(tree: str) -> str:
    return subprocess.run(
        [FILEOPS, tree], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def run_sandboxed(base: str, tree: str, *flags: str) -> str:
    proc = subprocess.run(
        [RUNSC, f"--root={base}/state", *flags, "do", FILEOPS, tree],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def trees(base: str) -> tuple[str, str]:
    native, sandboxed = os.path.join(base, "native"), os.path.join(base, "sandboxed")
    make_tree(native)
    make_tree(sandboxed)
    return native, sandboxed


def test_overlay_behaves_as_linux_and_leaves_host_untouched(base):
    native, sandboxed = trees(base)
    before = snapshot(sandboxed)
    expected = run_native(native)
    assert run_sandboxed(base, sandboxed) == expected
    assert snapshot(sandboxed) == before


def test_overlay_none_writes_through(base):
    native, sandboxed = trees(base)
    expected = run_native(native)
    assert run_sandboxed(base, sandboxed, "--overlay2=none") == expected
    assert snapshot(sandboxed) == snapshot(native)


def test_sentry_opens_no_host_path_after_start_up(base):
    # The guard kills the sandbox (SIGSYS) at the first host path lookup
    # once the application runs; the workload then cannot finish.
    native, sandboxed = trees(base)
    expected = run_native(native)
    assert run_sandboxed(base, sandboxed, "--TESTONLY-forbid-host-open") == expected


SCRIPT = r"""
set -e
cd "$1"
echo new > new.txt
mv new.txt renamed.txt
ln renamed.txt hard.txt
ln -s renamed.txt sym
cat sym
rm gone.txt
mkdir -p newdir/deeper
echo f > newdir/deeper/f
mv dir dir2
ls -1 . dir2 dir2/sub newdir/deeper
flock keep.txt true
rm -r dir2 newdir
rmdir emptydir
ls -1a
"""


def test_shell_script(base):
    native, sandboxed = trees(base)
    before = snapshot(sandboxed)
    sh = ["/bin/busybox", "sh", "-c", SCRIPT, "sh"]
    expected = subprocess.run(
        [*sh, native], check=True, capture_output=True, text=True
    ).stdout
    proc = subprocess.run(
        [RUNSC, f"--root={base}/state", "do", *sh, sandboxed],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    assert snapshot(sandboxed) == before
