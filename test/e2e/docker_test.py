"""dockerd drives runsc as a registered runtime: `docker run --runtime`.

dockerd runs on a private data root, exec root, pid file and socket, with no
bridge and no iptables, and with its own containerd; it is stopped by its
pid. The runtime is a wrapper that records each sandbox. The image comes
from a busybox root (`docker import`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from runsc.testutil import daemons, procs
from runsc.testutil.rootfs import make_busybox_rootfs, tar_rootfs
from runsc.testutil.runsc import recorded_namespaces, write_wrapper

IMAGE = "pyvisor-e2e-busybox"
RUNTIME = "runsc-e2e"
# Debian's docker client; another may come first on the PATH.
DOCKER = "/usr/bin/docker"


class Docker:
    """Docker runs the docker client against the test's dockerd."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.host = f"unix://{tmp}/docker.sock"

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [DOCKER, "-H", self.host, *args],
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
        yield d
        for cid in d("ps", "-aq", check=False).stdout.split():
            d("rm", "-f", cid, check=False)
    finally:
        daemon.stop()
        leftovers = procs.leftovers(recorded_namespaces(record))
        shutil.rmtree(tmp, ignore_errors=True)
    assert leftovers == [], "sandbox processes outlived their containers"
    assert not procs.alive(daemon.pid)


def _run(docker: Docker, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return docker("run", "--runtime", RUNTIME, "--network", "none", *args, check=check)


def test_run_output_and_exit_status(docker: Docker) -> None:
    assert _run(docker, "--rm", IMAGE, "echo", "hi", "docker").stdout == "hi docker\n"
    assert (
        _run(docker, "--rm", IMAGE, "sh", "-c", "exit 4", check=False).returncode == 4
    )


def test_exec_stop_rm(docker: Docker) -> None:
    cid = _run(docker, "-d", IMAGE, "sleep", "1000").stdout.strip()
    try:
        assert docker("exec", cid, "echo", "exec", "ok").stdout == "exec ok\n"
        docker("stop", "-t", "5", cid)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout
        assert code.strip() == "143"
    finally:
        docker("rm", "-f", cid, check=False)
    assert docker("ps", "-aq").stdout.strip() == ""
