"""The OCI process settings reach the container's process: user and groups,
working directory, environment, hostname, rlimits, no_new_privileges and
the capability bounding set. Fields this runtime cannot honour yet are
reported as warnings in --log, where container clients show them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from runsc.testutil.rootfs import make_busybox_rootfs, make_spec, write_bundle
from runsc.testutil.runsc import Runsc, runfile


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="rsc-spec-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _bundle(tmp: str, spec: dict) -> str:
    root = os.path.join(tmp, "rootfs")
    os.makedirs(os.path.join(root, "work"), exist_ok=True)
    shutil.copy2(runfile("test/e2e/whoami"), os.path.join(root, "whoami"))
    spec["root"] = {"path": root, "readonly": True}
    return write_bundle(os.path.join(tmp, "bundle"), spec)


def _whoami(out: str) -> dict[str, str]:
    values = {}
    for line in out.splitlines():
        for field in line.split(" "):
            key, _, value = field.partition("=")
            values[key] = value
    return values


def test_process_settings_reach_the_process(tmp: str) -> None:
    spec = make_spec(
        ["/whoami"],
        user={"uid": 1000, "gid": 1001, "additionalGids": [5, 7]},
        cwd="/work",
        env=["PATH=/bin", "E2E_VAR=hello"],
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}],
        noNewPrivileges=True,
        capabilities={
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
        },
    )
    spec["hostname"] = "spec-host"
    out = Runsc(os.path.join(tmp, "root")).run(
        "run", "--bundle", _bundle(tmp, spec), "c"
    )
    got = _whoami(out.stdout)
    assert (got["uid"], got["euid"], got["gid"], got["egid"]) == (
        "1000",
        "1000",
        "1001",
        "1001",
    )
    assert got["groups"] == "5,7"
    assert got["cwd"] == "/work"
    assert got["hostname"] == "spec-host"
    assert got["nofile"] == "77:88"
    assert got["no_new_privs"] == "1"
    assert (got["bounding_kill"], got["bounding_sys_admin"]) == ("1", "0")
    assert got["E2E_VAR"] == "hello"


def test_unsupported_fields_are_warned_about_in_the_log(tmp: str) -> None:
    spec = make_spec(["/whoami"])
    spec["mounts"] = [
        {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup"}
    ]
    spec["linux"]["sysctl"] = {"net.core.somaxconn": "100"}
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_KILL"}],
    }
    log = os.path.join(tmp, "log.json")
    runsc = Runsc(os.path.join(tmp, "root"), flags=["--log", log, "--log-format=json"])
    runsc.run("run", "--bundle", _bundle(tmp, spec), "c")
    with open(log) as f:
        entries = [json.loads(line) for line in f]
    warnings = " ".join(e["msg"] for e in entries if e["level"] == "warning")
    for word in ("'cgroup2'", "net.core.somaxconn", "no_such_call"):
        assert word in warnings, warnings


def test_host_wide_sysctl_is_refused(tmp: str) -> None:
    spec = make_spec(["/whoami"])
    spec["linux"]["sysctl"] = {"vm.swappiness": "1"}
    p = Runsc(os.path.join(tmp, "root")).run(
        "run", "--bundle", _bundle(tmp, spec), "c", check=False
    )
    assert p.returncode != 0
    assert "vm.swappiness" in p.stderr


# The shell script of test_config_reaches_the_container: one line per check.
_CHECKS = r"""
echo "hostname=$(hostname)"
echo "secret=[$(cat /etc/secret)]"
echo "secretdir=[$(ls -A /secretdir)]"
touch /secretdir/x 2>/dev/null && echo secretdir-writable || echo secretdir-ro
echo "masked-write" > /etc/secret && echo "after-write=[$(cat /etc/secret)]"
touch /data/x 2>/dev/null && echo data-writable || echo data-ro
touch /data/sub/x 2>/dev/null && echo sub-writable || echo sub-ro
touch /other/x 2>/dev/null && echo other-writable || echo other-ro
echo "scratch=$(stat -c %a /scratch)"
touch /scratch/x 2>/dev/null && echo scratch-writable || echo scratch-ro
touch /rofs/x 2>/dev/null && echo rofs-writable || echo rofs-ro
echo "null=$(stat -c %F /dev/null)"
echo "mqueue=$(stat -c %a /dev/mqueue)"
grep -q ' /dev/mqueue mqueue ' /proc/mounts && echo mqueue-mounted
echo "msg_max=$(cat /proc/sys/fs/mqueue/msg_max)"
mkdir /tmp/blocked 2>/dev/null && echo mkdir-allowed || echo mkdir-denied
kill -0 $$ && echo kill0-allowed
kill -USR2 $$ 2>/dev/null || echo usr2-denied
echo done
"""


def test_config_reaches_the_container(tmp: str) -> None:
    root = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    for d in ("secretdir", "data/sub", "other"):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, "etc", "secret"), "w") as f:
        f.write("top secret")
    with open(os.path.join(root, "secretdir", "key"), "w") as f:
        f.write("key")
    spec = make_spec(["/bin/sh", "-c", _CHECKS])
    spec["root"] = {"path": root, "readonly": False}
    spec["mounts"] = [
        {
            "destination": "/scratch",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "mode=0700", "size=1m"],
        },
        {"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/rofs", "type": "tmpfs", "source": "t", "options": ["ro"]},
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    spec["linux"].update(
        maskedPaths=["/etc/secret", "/secretdir", "/no/such/path"],
        readonlyPaths=["/data", "/no/such/dir"],
        sysctl={"kernel.hostname": "from-sysctl", "fs.mqueue.msg_max": "42"},
        seccomp={
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {
                    "names": ["mkdir", "mkdirat"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 13,
                },
                {
                    "names": ["kill"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}],
                },
            ],
        },
    )
    bundle = write_bundle(os.path.join(tmp, "bundle"), spec)
    out = Runsc(os.path.join(tmp, "root")).run("run", "--bundle", bundle, "c")
    lines = out.stdout.splitlines()
    for want in (
        "hostname=from-sysctl",
        "secret=[]",
        "secretdir=[]",
        "secretdir-ro",
        "after-write=[]",
        "data-ro",
        "sub-writable",
        "other-writable",
        "scratch=700",
        "scratch-writable",
        "rofs-ro",
        "null=character special file",
        "mqueue=1777",
        "mqueue-mounted",
        "msg_max=42",
        "mkdir-denied",
        "kill0-allowed",
        "usr2-denied",
        "done",
    ):
        assert want in lines, out.stdout + out.stderr
    # Nothing reached the host's files.
    with open(os.path.join(root, "etc", "secret")) as f:
        assert f.read() == "top secret"
    assert not os.path.exists(os.path.join(root, "other", "x"))


def test_missing_working_directory_is_made(tmp: str) -> None:
    # As runc does for the container's init (not for exec): made inside
    # the sandbox, so the host's root is untouched.
    root = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec = make_spec(["/bin/pwd"], cwd="/no/such/dir")
    spec["root"] = {"path": root, "readonly": True}
    bundle = write_bundle(os.path.join(tmp, "bundle"), spec)
    out = Runsc(os.path.join(tmp, "root")).run("run", "--bundle", bundle, "c")
    assert out.stdout == "/no/such/dir\n", out.stderr
    assert not os.path.exists(os.path.join(root, "no"))


def test_memory_limit_is_the_sandbox_memory(tmp: str) -> None:
    # As gVisor shows a container its memory limit: /proc/meminfo and
    # sysinfo(2) (free) report it as the total.
    root = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec = make_spec(["/bin/sh", "-c", "cat /proc/meminfo; free -k"])
    spec["root"] = {"path": root, "readonly": True}
    spec["linux"]["resources"] = {"memory": {"limit": 256 << 20}}
    bundle = write_bundle(os.path.join(tmp, "bundle"), spec)
    out = Runsc(os.path.join(tmp, "root")).run("run", "--bundle", bundle, "c")
    fields = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    assert fields["MemTotal"] == ["262144", "kB"], out.stdout
    free = int(fields["MemFree"][0])
    assert 0 < free <= 262144
    assert int(fields["MemAvailable"][0]) == free
    # busybox free: "Mem: total used free ...", in KiB.
    assert fields["Mem"][0] == "262144", out.stdout
