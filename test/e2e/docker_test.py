"""dockerd drives runsc as a registered runtime: `docker run --runtime`.

dockerd runs on a private data root, exec root, pid file and socket, with no
bridge and no iptables, and with its own containerd; it is stopped by its
pid. The runtime is a wrapper that records each sandbox. Images come from
a busybox root and from the cached Debian root of tools/debian_rootfs.sh
(`docker import`; those tests skip without it). Each behaviour is checked
against runc, dockerd's default runtime, where it is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from runsc.testutil import daemons, procs
from runsc.testutil.rootfs import debian_rootfs, make_busybox_rootfs, tar_rootfs
from runsc.testutil.runsc import recorded_namespaces, write_wrapper

IMAGE = "pyvisor-e2e-busybox"
DEBIAN = "pyvisor-e2e-debian"
RUNTIME = "runsc-e2e"
# Debian's docker client; another may come first on the PATH.
DOCKER = "/usr/bin/docker"


class Docker:
    """Docker runs the docker client against the test's dockerd."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.host = f"unix://{tmp}/docker.sock"
        self.logs = f"{tmp}/logs/"
        self.images = {IMAGE}
        self.runtimes = [RUNTIME] + (["runc"] if shutil.which("runc") else [])

    def argv(self, *args: str) -> list[str]:
        """The command line of a docker command."""
        return [DOCKER, "-H", self.host, *args]

    def in_terminal(self, *args: str) -> subprocess.CompletedProcess:
        """Runs docker under script(1), which gives it a 30x100 terminal."""
        cmd = " ".join("'" + a.replace("'", "'\\''") + "'" for a in self.argv(*args))
        return subprocess.run(
            ["script", "-qec", f"stty rows 30 cols 100; {cmd}", "/dev/null"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

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
            raise AssertionError(f"docker {args} exited {p.returncode}: {p.stderr}")
        return p


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    if not os.path.exists(DOCKER) or shutil.which("dockerd") is None:
        pytest.skip("docker.io is not installed (tools/setup.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="rsc-dk-", dir="/tmp")
    os.makedirs(os.path.join(tmp, "logs"))
    record = os.path.join(tmp, "sandboxes")
    wrapper = write_wrapper(
        os.path.join(tmp, "runsc"), record, [f"--debug-log={tmp}/logs/", "--debug"]
    )
    daemon = daemons.dockerd(tmp, {RUNTIME: {"path": wrapper}})
    d = Docker(tmp)
    try:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        d("import", tar_rootfs(rootfs, os.path.join(tmp, "rootfs.tar")), IMAGE)
        debian = debian_rootfs()
        if debian:
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", debian, "-c", "."],
                stdout=subprocess.PIPE,
            )
            try:
                p = subprocess.run(
                    d.argv("import", "-", DEBIAN),
                    stdin=tar.stdout,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
            finally:
                assert tar.stdout is not None
                tar.stdout.close()
                tar.wait()
            assert p.returncode == 0, p.stderr
            d.images.add(DEBIAN)
        yield d
        for cid in d("ps", "-aq", check=False).stdout.split():
            d("rm", "-f", cid, check=False)
    finally:
        daemon.stop()
        leftovers = procs.leftovers(recorded_namespaces(record))
        leftovers += procs.leftover_runsc(d.logs)
        shutil.rmtree(tmp, ignore_errors=True)
    assert leftovers == [], "sandbox processes outlived their containers"
    # Reaped by stop (its pid may be reused already on a busy machine).
    assert daemon.proc.poll() is not None


def _run(
    docker: Docker, *args: str, check: bool = True, runtime: str = RUNTIME
) -> subprocess.CompletedProcess:
    return docker("run", "--runtime", runtime, "--network", "none", *args, check=check)


def test_run_output_and_exit_status(docker: Docker) -> None:
    assert _run(docker, "--rm", IMAGE, "echo", "hi", "docker").stdout == "hi docker\n"
    assert (
        _run(docker, "--rm", IMAGE, "sh", "-c", "exit 4", check=False).returncode == 4
    )


IMAGES = [IMAGE, pytest.param(DEBIAN, id="debian")]


def _image(docker: Docker, image: str) -> str:
    if image not in docker.images:
        pytest.skip("no cached Debian root: tools/debian_rootfs.sh makes it")
    return image


@pytest.mark.parametrize("image", IMAGES)
def test_run_like_runc(docker: Docker, image: str) -> None:
    image = _image(docker, image)
    for cmd in (
        ["sh", "-c", "echo a; echo b | cat; exit 6"],
        ["no-such-command"],
    ):
        out = [
            _run(docker, "--rm", image, *cmd, check=False, runtime=rt)
            for rt in docker.runtimes
        ]
        assert all(
            (p.returncode, p.stdout) == (out[0].returncode, out[0].stdout) for p in out
        ), [(p.returncode, p.stdout, p.stderr) for p in out]
    assert (out[0].returncode, out[0].stdout) == (127, "")


def test_debian_programs(docker: Docker) -> None:
    image = _image(docker, DEBIAN)
    script = "cat /etc/debian_version; python3 -c 'print(6 * 7)'; exit 3"
    out = [
        _run(docker, "--rm", image, "bash", "-c", script, check=False, runtime=rt)
        for rt in docker.runtimes
    ]
    lines = out[0].stdout.splitlines()
    assert out[0].returncode == 3 and lines[0].startswith("12."), out[0]
    assert lines[1] == "42"
    assert all((p.returncode, p.stdout) == (3, out[0].stdout) for p in out)


@pytest.mark.parametrize("image", IMAGES)
def test_exec_stop_rm(docker: Docker, image: str) -> None:
    image = _image(docker, image)
    results = []
    for rt in docker.runtimes:
        cid = _run(docker, "-d", image, "sleep", "1000", runtime=rt).stdout.strip()
        got: list[object] = []
        try:
            got.append(docker("exec", cid, "echo", "exec", "ok").stdout)
            got.append(
                docker("exec", cid, "sh", "-c", "exit 3", check=False).returncode
            )
            p = docker.in_terminal(
                "exec", "-t", cid, "sh", "-c", "test -t 0 && echo on-a-tty; exit 4"
            )
            # The terminal turns "\n" into "\r\n", and script reports it.
            got += [p.stdout.split(), p.returncode]
            # sleep, as pid 1, ignores SIGTERM: docker kills it after -t.
            docker("stop", "-t", "2", cid)
            code = docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout
            got.append(code.strip())
        finally:
            docker("rm", "-f", cid, check=False)
        assert docker("ps", "-aq").stdout.strip() == ""
        results.append(got)
    assert results[0] == ["exec ok\n", 3, ["on-a-tty"], 4, "137"], results
    assert results == [results[0]] * len(results)
    assert procs.leftover_runsc(docker.logs) == []


@pytest.mark.parametrize("image", IMAGES)
def test_terminal_like_runc(docker: Docker, image: str) -> None:
    image = _image(docker, image)
    # docker sets the terminal's size after the start, so the size is not
    # compared: it may not be set yet when the command looks.
    script = "test -t 0 && test -t 1 && echo tty-out; exit 3"
    out = []
    for rt in docker.runtimes:
        p = docker.in_terminal(
            "run",
            "--rm",
            "-t",
            "--runtime",
            rt,
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        )
        # The client may say it could not size a terminal that has gone.
        lines = [ln for ln in p.stdout.splitlines() if "resize" not in ln]
        out.append((p.returncode, " ".join(lines).split()))
    assert out[0] == (3, ["tty-out"]), out
    assert out == [out[0]] * len(out)


@pytest.mark.parametrize(
    ("options", "script", "want"),
    [
        (
            ["--read-only", "--tmpfs", "/run"],
            "touch /x 2>/dev/null || echo ro; touch /run/x && echo ok",
            "ro\nok\n",
        ),
        (
            ["--cap-drop", "ALL", "--user", "1000:1000", "--group-add", "44"],
            "id -u; id -G; touch /x 2>/dev/null || echo denied",
            "1000\n1000 44\ndenied\n",
        ),
        (["--hostname", "dk-host"], "hostname", "dk-host\n"),
        (["--init"], "echo under-init; exit 2", "under-init\n"),
        (["-e", "FOO=bar", "-w", "/tmp"], 'echo "$FOO $(pwd)"', "bar /tmp\n"),
    ],
    ids=["read-only", "user-caps", "hostname", "init", "env-workdir"],
)
def test_options_like_runc(
    docker: Docker, options: list[str], script: str, want: str
) -> None:
    out = [
        _run(
            docker, "--rm", *options, IMAGE, "sh", "-c", script, check=False, runtime=rt
        )
        for rt in docker.runtimes
    ]
    code = 2 if "--init" in options else 0
    assert (out[0].returncode, out[0].stdout) == (code, want), out[0].stderr
    assert all((p.returncode, p.stdout) == (code, want) for p in out), out
