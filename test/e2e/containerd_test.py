"""containerd drives runsc through its runc shim, as Kubernetes would.

containerd runs on a private root, state and sockets with the CRI plugin
off, and is stopped by its pid. `ctr run --runc-binary` points the shim at
a wrapper that records each sandbox. Images are OCI archives made here from
a busybox root and from the cached Debian root of tools/debian_rootfs.sh
(those tests skip without it). Where runc is installed, each behaviour is
checked against it (the shim's default runtime). ctr never forwards
end-of-input from a piped stdin, so no test pipes one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from runsc.testutil import daemons, procs
from runsc.testutil.rootfs import debian_rootfs, make_busybox_rootfs, make_oci_archive
from runsc.testutil.runsc import recorded_calls, recorded_namespaces, write_wrapper

IMAGE = "docker.io/pyvisor/e2e-busybox:latest"
DEBIAN = "docker.io/pyvisor/e2e-debian:latest"


class Ctr:
    """Ctr runs ctr against the test's containerd, in its own namespace."""

    def __init__(self, tmp: str, daemon: daemons.Daemon) -> None:
        self.tmp = tmp
        self.daemon = daemon
        self.namespace = f"pyvisor-e2e-{secrets.token_hex(4)}"
        self.record = os.path.join(tmp, "sandboxes")
        os.makedirs(os.path.join(tmp, "logs"))
        self.logs = f"{tmp}/logs/"
        self.runtime = write_wrapper(
            os.path.join(tmp, "runsc"),
            self.record,
            [f"--debug-log={self.logs}", "--debug"],
        )
        self.runc = shutil.which("runc")
        self.images = {IMAGE}
        self._n = 0

    def runtimes(self) -> list[str]:
        """runsc, and runc to compare with where it is installed."""
        return [self.runtime] + ([self.runc] if self.runc else [])

    def new_id(self) -> str:
        """A fresh container id."""
        self._n += 1
        return f"c{self._n}"

    def in_terminal(self, *args: str) -> subprocess.CompletedProcess:
        """Runs ctr under script(1), which gives it a 30x100 terminal."""
        argv = self.argv(*args)
        cmd = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        return subprocess.run(
            ["script", "-qec", f"stty rows 30 cols 100; {cmd}", "/dev/null"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def argv(self, *args: str) -> list[str]:
        """The command line of a ctr command."""
        return [
            "ctr",
            "--address",
            os.path.join(self.tmp, "containerd.sock"),
            "--namespace",
            self.namespace,
            *args,
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        p = subprocess.run(
            self.argv(*args),
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
        debian = debian_rootfs()
        if debian:
            archive = make_oci_archive(debian, os.path.join(tmp, "debian.tar"), DEBIAN)
            c("images", "import", archive, timeout=900)
            os.unlink(archive)
            c.images.add(DEBIAN)
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
        leftovers += procs.leftover_runsc(c.logs)
        shutil.rmtree(f"/run/containerd/runc/{c.namespace}", ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    assert leftovers == [], "sandbox processes outlived their containers"
    # Reaped by stop (its pid may be reused already on a busy machine).
    assert daemon.proc.poll() is not None


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


IMAGES = [IMAGE, pytest.param(DEBIAN, id="debian")]


def _image(ctr: Ctr, image: str) -> str:
    if image not in ctr.images:
        pytest.skip("no cached Debian root: tools/debian_rootfs.sh makes it")
    return image


def _both(ctr: Ctr, image: str, *cmd: str) -> list[subprocess.CompletedProcess]:
    """`ctr run --rm` with each runtime; checks that they agree on the exit
    status and output; returns runsc's first."""
    out = [
        ctr(
            "run",
            "--rm",
            "--runc-binary",
            rt,
            image,
            ctr.new_id(),
            *cmd,
            check=False,
        )
        for rt in ctr.runtimes()
    ]
    for p in out[1:]:
        assert (p.returncode, p.stdout) == (out[0].returncode, out[0].stdout), (
            out[0].stderr,
            p.stderr,
        )
    return out


@pytest.mark.parametrize("image", IMAGES)
def test_run_like_runc(ctr: Ctr, image: str) -> None:
    image = _image(ctr, image)
    (p, *_) = _both(ctr, image, "sh", "-c", "echo a; echo b | cat; exit 5")
    assert (p.returncode, p.stdout) == (5, "a\nb\n"), p.stderr
    (p, *_) = _both(ctr, image, "no-such-command")
    assert p.returncode != 0


def test_debian_programs(ctr: Ctr) -> None:
    image = _image(ctr, DEBIAN)
    script = (
        "cat /etc/debian_version; ls /usr/bin | wc -l; "
        "python3 -c 'print(6 * 7)'; exit 3"
    )
    (p, *_) = _both(ctr, image, "bash", "-c", script)
    assert p.returncode == 3
    lines = p.stdout.splitlines()
    assert lines[0].startswith("12.") and lines[2] == "42", p.stdout


@pytest.mark.parametrize("image", IMAGES)
def test_terminal_like_runc(ctr: Ctr, image: str) -> None:
    image = _image(ctr, image)
    # ctr sets the terminal's size after the start, so the size is not
    # compared: it may not be set yet when the command looks.
    script = "test -t 0 && test -t 1 && echo tty-out; exit 3"
    out = []
    for rt in ctr.runtimes():
        p = ctr.in_terminal(
            "run",
            "--rm",
            "-t",
            "--runc-binary",
            rt,
            image,
            ctr.new_id(),
            "sh",
            "-c",
            script,
        )
        # ctr writes a NUL first, which the terminal echoes as "^@".
        out.append((p.returncode, p.stdout.replace("^@", "").split()))
    assert out[0] == (3, ["tty-out"]), out
    assert out == [out[0]] * len(out)


@pytest.mark.parametrize("image", IMAGES)
def test_signals_like_runc(ctr: Ctr, image: str) -> None:
    image = _image(ctr, image)
    got = []
    for rt in ctr.runtimes():
        cid = ctr.new_id()
        run = subprocess.Popen(
            ctr.argv("run", "--rm", "--runc-binary", rt, image, cid, "sleep", "1000"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert procs.wait_until(
                lambda c=cid: (
                    "RUNNING" in ctr("tasks", "ls", check=False).stdout
                    and c in ctr("tasks", "ls", check=False).stdout
                ),
                60,
            )
            # sleep, as pid 1, ignores SIGTERM; SIGKILL ends it.
            ctr("tasks", "kill", "-s", "TERM", cid)
            time.sleep(1)
            still = run.poll() is None
            ctr("tasks", "kill", "-s", "KILL", cid)
            got.append((still, run.wait(60)))
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            ctr("tasks", "delete", "-f", cid, check=False)
            ctr("containers", "delete", cid, check=False)
    assert got[0] == (True, 137), got
    assert got == [got[0]] * len(got)
    assert procs.leftover_runsc(ctr.logs) == []
