"""Random system calls with bad arguments (syscall_fuzz.c) under `runsc do`:
the sentry must answer every one with an errno, never crash.

A sentry exception stops the sandbox with exit status 134 and a traceback in
the debug log; both are checked. The seeds are fixed so that a failure can be
replayed (`syscall_fuzz SECONDS SEED` in `runsc --debug do`).
"""

from __future__ import annotations

import glob
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
FUZZ = _runfile("test/e2e/syscall_fuzz")
SECONDS = 20


@pytest.mark.parametrize(
    ("seed", "env"),
    [
        (3, {}),
        (9, {"FUZZ_STRUCT": "1", "FUZZ_THREADS": "1"}),
        # Files and memory, where state builds up between calls.
        (
            12,
            {
                "FUZZ_STRUCT": "1",
                "FUZZ_SET": "0,1,2,3,8,9,10,11,12,16,17,18,19,20,25,28,32,33,40,"
                "72,74,75,76,77,78,82,83,84,86,87,88,89,90,92,217,257,258,263,"
                "265,266,267,268,269,275,276,278,285,292,295,296,316,326,327",
            },
        ),
    ],
    ids=["plain", "threads", "files_and_memory"],
)
def test_sentry_survives_random_syscalls(seed: int, env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-test-") as logs:
        # The children write garbage anywhere in their stdio (gigabytes, at
        # far offsets): it goes to /dev/null. The fuzzer's exit status says
        # whether it ran to the end (2: fork failed, 3: a child outlived
        # SIGKILL).
        r = subprocess.run(
            [
                RUNSC,
                "--debug",
                f"--debug-log={logs}/",
                "do",
                "--cwd=/tmp",
                # env execs the fuzzer, which stays pid 1.
                "/usr/bin/env",
                *[f"{k}={v}" for k, v in env.items()],
                FUZZ,
                str(SECONDS),
                str(seed),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=SECONDS + 120,
            check=False,
        )
        boot = ""
        for path in glob.glob(f"{logs}/*boot*"):
            with open(path, errors="replace") as f:
                boot += f.read()
        assert "Traceback" not in boot, boot[boot.find("Traceback") - 300 :][:4000]
        assert r.returncode == 0, f"exit status {r.returncode}"
