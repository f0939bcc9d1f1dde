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

from runsc.testutil.rootfs import make_spec, write_bundle
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
    spec["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    spec["linux"]["maskedPaths"] = ["/proc/kcore"]
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO"}
    log = os.path.join(tmp, "log.json")
    runsc = Runsc(os.path.join(tmp, "root"), flags=["--log", log, "--log-format=json"])
    runsc.run("run", "--bundle", _bundle(tmp, spec), "c")
    with open(log) as f:
        entries = [json.loads(line) for line in f]
    warnings = " ".join(e["msg"] for e in entries if e["level"] == "warning")
    for word in ("mounts", "maskedPaths", "seccomp"):
        assert word in warnings, warnings
