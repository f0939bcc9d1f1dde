"""The container's stdio are the caller's own open files, as on Linux.

A sandboxed command whose stdout is a regular file must write at that file's
shared offset, so output from the shell before and after it lands where it
would natively (gVisor 20221219 writes at its own offset and is overwritten);
a command that reads part of a redirected stdin must leave the rest for the
next reader. Each case runs the same shell snippet natively and with the
command under runsc and compares the resulting files byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

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

# (name, snippet): $RUN is empty natively and `runsc do` in the sandbox;
# $IN is a file with a few lines; the snippet's stdout goes to a file.
CASES = [
    ("cat_between_echoes", "echo before; $RUN /bin/cat $IN; echo after"),
    ("busybox_cat", "echo before; $RUN /bin/busybox cat $IN; echo after"),
    ("shell_echo", "echo one; $RUN /bin/sh -c 'echo two; echo three'; echo four"),
    ("append_mode", "echo start; $RUN /bin/sh -c 'echo middle' >> $OUT; echo end"),
    ("partial_stdin", "{ $RUN /bin/sh -c 'read a; echo got $a'; /bin/cat; } < $IN"),
    ("head_then_rest", "{ $RUN /usr/bin/head -n 1; /bin/cat; } < $IN"),
]


def _run(snippet: str, run: str, workdir: str) -> bytes:
    src = os.path.join(workdir, "in.txt")
    out = os.path.join(workdir, "out.txt")
    with open(src, "w") as f:
        f.write("line one\nline two\nline three\n")
    env = dict(os.environ, RUN=run, IN=src, OUT=out)
    subprocess.run(
        ["/bin/sh", "-c", f"exec > {out}; {snippet}"],
        env=env,
        check=True,
        timeout=120,
        cwd=workdir,
    )
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize(("name", "snippet"), CASES, ids=[c[0] for c in CASES])
def test_redirected_stdio_matches_native(name: str, snippet: str) -> None:
    # Under /var/tmp: the sandbox's /tmp is its own tmpfs.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as native_dir:
        native = _run(snippet, "", native_dir)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as sandbox_dir:
        sandboxed = _run(snippet, f"{RUNSC} do", sandbox_dir)
    assert sandboxed == native, name
