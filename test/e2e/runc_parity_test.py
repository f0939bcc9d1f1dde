"""Small behaviours of `runsc run` checked against runc where it is
installed: what an image's /tmp shows, a seccomp profile that forbids
execve, and the errors for a bind mount whose source is missing and for an
empty --root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from runsc.testutil.rootfs import make_busybox_rootfs, make_spec, write_bundle
from runsc.testutil.runsc import Runsc

RUNC = shutil.which("runc")


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="rsc-parity-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run(tmp: str, runtime: str, spec: dict[str, Any], rootfs: str):
    """Runs spec on rootfs with runtime ("runsc" or "runc"); returns the
    completed process."""
    spec = dict(spec, root={"path": rootfs, "readonly": True})
    # runc needs /proc (the sandbox adds it by itself).
    spec.setdefault(
        "mounts", [{"destination": "/proc", "type": "proc", "source": "proc"}]
    )
    bundle = write_bundle(os.path.join(tmp, f"bundle-{runtime}"), spec)
    state = os.path.join(tmp, f"state-{runtime}")
    if runtime == "runsc":
        return Runsc(state).run("run", "--bundle", bundle, "c", check=False)
    assert RUNC is not None
    return subprocess.run(
        [RUNC, f"--root={state}", "run", "--bundle", bundle, "c"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _runtimes() -> list[str]:
    return ["runsc"] + (["runc"] if RUNC else [])


def test_an_images_tmp_shows_as_under_runc(tmp: str) -> None:
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    with open(os.path.join(rootfs, "tmp", "from-image"), "w") as f:
        f.write("image\n")
    spec = make_spec(["/bin/cat", "/tmp/from-image"])
    for rt in _runtimes():
        out = _run(tmp, rt, spec, rootfs)
        assert (rt, out.returncode, out.stdout) == (rt, 0, "image\n"), out.stderr


def test_an_empty_tmp_is_the_sandboxs_own(tmp: str) -> None:
    # Unlike runc, as gVisor: a writable tmpfs over an empty /tmp even when
    # the root is read-only.
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec = make_spec(["/bin/sh", "-c", "echo x > /tmp/new && cat /tmp/new"])
    out = _run(tmp, "runsc", spec, rootfs)
    assert (out.returncode, out.stdout) == (0, "x\n"), out.stderr


def test_a_profile_that_refuses_execve_stops_the_start(tmp: str) -> None:
    # runc installs the profile before the execve of the container's
    # process, so that execve gets the profile's errno and the container
    # never runs; the sentry judges the execve it does not make the same way.
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec = make_spec(["/bin/sh", "-c", "echo started"])
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    for rt in _runtimes():
        out = _run(tmp, rt, spec, rootfs)
        assert (rt, out.returncode, out.stdout) == (rt, 1, ""), out.stderr
        assert "exec /bin/sh" in out.stderr
        assert "permission denied" in out.stderr.lower()


def test_a_profile_that_allows_execve_starts(tmp: str) -> None:
    # Only the calls the profile names fail: the init starts and gets the
    # profile's errno from them, as under runc.
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec = make_spec(["/bin/sh", "-c", "mkdir /tmp/d; echo rc=$?"])
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ],
    }
    for rt in _runtimes():
        out = _run(tmp, rt, spec, rootfs)
        assert (rt, out.returncode, out.stdout) == (rt, 0, "rc=1\n"), out.stderr
        assert "not permitted" in out.stderr


def test_a_missing_bind_source_is_named(tmp: str) -> None:
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    src = os.path.join(tmp, "no-such-source")
    spec = make_spec(["/bin/true"])
    spec["mounts"] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind"]},
    ]
    for rt in _runtimes():
        out = _run(tmp, rt, spec, rootfs)
        assert (rt, out.returncode) == (rt, 1), out.stderr
        assert src in out.stderr
        assert "no such file or directory" in out.stderr.lower()
    # Nothing is left behind: no container in the state root.
    listed = Runsc(os.path.join(tmp, "state-runsc")).run("list", "--quiet")
    assert listed.stdout.strip() == ""


def test_an_empty_root_flag_is_named(tmp: str) -> None:
    runsc = Runsc(tmp)
    out = subprocess.run(
        [runsc.path, "--root=", "state", "c"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    assert "--root" in out.stderr
    assert "empty" in out.stderr


def test_cgroup_limits(tmp: str) -> None:
    # The sandbox is in linux.cgroupsPath with the memory limit there; the
    # pid limit makes a fork past it fail with EAGAIN, as under runc (busybox
    # sh gives up the script with status 2).
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    script = (
        "cat /proc/self/cgroup > /dev/null; "
        "for i in $(seq 1 20); do sleep 1 & done; echo all-started"
    )
    for rt in _runtimes():
        name = f"pyvisor-parity-{os.getpid()}-{rt}"
        spec = make_spec(["/bin/sh", "-c", script])
        spec["linux"]["cgroupsPath"] = f"/{name}"
        spec["linux"]["resources"] = {
            "memory": {"limit": 256 << 20},
            "pids": {"limit": 8},
        }
        out = _run(tmp, rt, spec, rootfs)
        assert (rt, out.returncode, out.stdout) == (rt, 2, ""), out.stderr
        assert "can't fork" in out.stderr
        # Removed once the container is gone.
        assert not os.path.exists(f"/sys/fs/cgroup/memory/{name}")
