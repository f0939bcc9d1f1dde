"""containerd drives runsc through its runc shim, as Kubernetes would.

containerd runs on a private root, state and sockets with the CRI plugin
off, and is stopped by its pid. `ctr run --runc-binary` points the shim at
a wrapper that records each sandbox. Images are OCI archives made here from
a busybox root. ctr never forwards end-of-input from a piped stdin, so no
test pipes one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from runsc.testutil import daemons, procs
from runsc.testutil.rootfs import make_busybox_rootfs, make_oci_archive
from runsc.testutil.runsc import recorded_calls, recorded_namespaces, write_wrapper

IMAGE = "docker.io/pyvisor/e2e-busybox:latest"


class Ctr:
    """Ctr runs ctr against the test's containerd, in its own namespace."""

    def __init__(self, tmp: str, daemon: daemons.Daemon) -> None:
        self.tmp = tmp
        self.daemon = daemon
        self.namespace = f"pyvisor-e2e-{secrets.token_hex(4)}"
        self.record = os.path.join(tmp, "sandboxes")
        os.makedirs(os.path.join(tmp, "logs"))
        self.runtime = write_wrapper(
            os.path.join(tmp, "runsc"),
            self.record,
            [f"--debug-log={tmp}/logs/", "--debug"],
        )

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [
                "ctr",
                "--address",
                os.path.join(self.tmp, "containerd.sock"),
                "--namespace",
                self.namespace,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {args} exited {p.returncode}: {p.stderr}")
        return p

    def shims(self) -> list[int]:
        """Pids of the runc shims serving this containerd."""
        sock = os.path.join(self.tmp, "containerd.sock")
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if (
                argv
                and argv[0].endswith(b"containerd-shim-runc-v2")
                and (sock.encode() in argv)
            ):
                if procs.alive(int(name)):
                    out.append(int(name))
        return out


@pytest.fixture(scope="module")
def ctr() -> Iterator[Ctr]:
    if shutil.which("ctr") is None or shutil.which("containerd-shim-runc-v2") is None:
        pytest.skip("containerd is not installed (tools/setup.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="rsc-ctr-", dir="/tmp")
    daemon = daemons.containerd(tmp)
    c = Ctr(tmp, daemon)
    try:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        archive = make_oci_archive(rootfs, os.path.join(tmp, "image.tar"), IMAGE)
        c("images", "import", archive)
        yield c
        for line in c("tasks", "ls", "-q", check=False).stdout.split():
            c("tasks", "kill", "-s", "KILL", line, check=False)
            c("tasks", "delete", "-f", line, check=False)
        for line in c("containers", "ls", "-q", check=False).stdout.split():
            c("containers", "delete", line, check=False)
        assert procs.wait_until(lambda: not c.shims(), 30), c.shims()
    finally:
        daemon.stop()
        leftovers = procs.leftovers(recorded_namespaces(c.record))
        shutil.rmtree(f"/run/containerd/runc/{c.namespace}", ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    assert leftovers == [], "sandbox processes outlived their containers"
    assert not procs.alive(daemon.pid)


def test_run_output_and_exit_status(ctr: Ctr) -> None:
    p = ctr(
        "run", "--rm", "--runc-binary", ctr.runtime, IMAGE, "t1", "echo", "hi", "ctr"
    )
    assert p.stdout == "hi ctr\n"
    p = ctr(
        "run",
        "--rm",
        "--runc-binary",
        ctr.runtime,
        IMAGE,
        "t2",
        "sh",
        "-c",
        "exit 9",
        check=False,
    )
    assert p.returncode == 9
    calls = recorded_calls(ctr.record)
    # The shim's own argv: --root, --log, --log-format json before the verb.
    assert any("--log-format json create " in c for c in calls), calls
    # It deletes, then deletes with --force: both succeed.
    assert any(c.startswith("0 ") and " delete --force t2" in c for c in calls), calls


def test_detached_task_exec_ps_kill(ctr: Ctr) -> None:
    ctr("run", "-d", "--runc-binary", ctr.runtime, IMAGE, "t3", "sleep", "1000")
    try:
        p = ctr("tasks", "exec", "--exec-id", "e1", "t3", "echo", "exec", "ok")
        assert p.stdout == "exec ok\n"
        ps = ctr("tasks", "ps", "t3").stdout
        assert ps.split()[:2] == ["PID", "INFO"], ps
        ctr("tasks", "kill", "-s", "KILL", "t3")
        assert procs.wait_until(
            lambda: "STOPPED" in ctr("tasks", "ls", check=False).stdout, 30
        )
        ls = ctr("tasks", "ls").stdout
        assert "STOPPED" in ls, ls
    finally:
        ctr("tasks", "delete", "-f", "t3", check=False)
        ctr("containers", "delete", "t3", check=False)
