"""util-linux's unshare(1), nsenter(1) and findmnt(8) under `runsc do`: a
shell script that makes mount namespaces, watches mounts propagate (or
not) between them and joins one with setns, run in the sandbox and, in a
private mount namespace of its own, natively; both must print the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")


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
_TOOLS = ("unshare", "nsenter", "findmnt", "mkfifo")

# $B is a directory on a tmpfs of the namespace the script starts in. The
# fifo orders the steps: no sleeps.
_SCRIPT = r"""
set -e
mkdir $B/m $B/fifo.d
mount -t tmpfs none $B/m
mount --make-shared $B/m
mkdir $B/m/a $B/m/b
unshare -m --propagation unchanged sh -c \
    "mount -t tmpfs none $B/m/a; touch $B/m/a/from-child"
test -e $B/m/a/from-child && echo shared-propagated
unshare -m sh -c "mount -t tmpfs none $B/m/b; touch $B/m/b/private"
test -e $B/m/b/private || echo private-stayed
findmnt -n -o PROPAGATION $B/m
mkfifo $B/fifo.d/f
unshare -m sh -c \
    "mount -t tmpfs none $B/m/b; touch $B/m/b/inside; echo up > $B/fifo.d/f;
     exec sleep 120" &
read x < $B/fifo.d/f
nsenter -t $! -m ls $B/m/b
test "$(readlink /proc/$!/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" && echo distinct
kill $!
wait $! || true
echo done
"""

_EXPECTED = "shared-propagated\nprivate-stayed\nshared\ninside\ndistinct\ndone\n"


@pytest.fixture
def script() -> Iterator[str]:
    # Under /var/tmp: the sandbox's /tmp is its own tmpfs.
    d = tempfile.mkdtemp(prefix="mntns-test-", dir="/var/tmp")
    path = os.path.join(d, "mntns.sh")
    with open(path, "w") as f:
        f.write(_SCRIPT)
    yield path
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"util-linux tools missing: {missing}")


def test_native(script: str) -> None:
    # A private namespace first, so that nothing reaches the host's mounts.
    base = tempfile.mkdtemp(prefix="mntns-base-", dir="/var/tmp")
    try:
        r = subprocess.run(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                'mount --make-rprivate / && mount -t tmpfs none "$B" && sh "$0"',
                script,
            ],
            env={**os.environ, "B": base},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.rmdir(base)
    assert (r.returncode, r.stdout) == (0, _EXPECTED), r.stderr


def test_sandboxed(script: str, tmp_path) -> None:
    r = subprocess.run(
        [RUNSC, f"--root={tmp_path}/state", "do", "sh", script],
        env={**os.environ, "B": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (r.returncode, r.stdout) == (0, _EXPECTED), r.stderr
