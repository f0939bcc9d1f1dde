"""Tests of the sandbox's host cgroups on directories that stand for the
hierarchies (the real ones are exercised by test/e2e/podman_test.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runsc.sandbox import cgroup

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {top}/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / {top}/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / {top}/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / {top}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / {top}/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:38 /sub {top}/again rw,relatime - cgroup2 cgroup2 rw
"""


@pytest.fixture
def hs(tmp_path: Path) -> list[cgroup.Hierarchy]:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO.format(top=tmp_path))
    for name in ("cpu", "memory", "pids", "systemd", "unified"):
        (tmp_path / name).mkdir()
    return cgroup.hierarchies(str(info))


def test_hierarchies(hs: list[cgroup.Hierarchy], tmp_path: Path) -> None:
    # One per hierarchy: the second mount of the unified one is left out.
    assert [(h.key(), h.version) for h in hs] == [
        ("cpu", 1),
        ("memory", 1),
        ("pids", 1),
        ("name=systemd", 1),
        ("", 2),
    ]
    assert hs[0].mount_point == str(tmp_path / "cpu")


def test_paths_absolute_and_relative(hs: list[cgroup.Hierarchy], tmp_path: Path):
    p = cgroup.plan({"cgroupsPath": "/parent/ctr"}, hs, {})
    assert p is not None
    assert [d for _h, d in p.dirs] == [
        str(tmp_path / n / "parent" / "ctr")
        for n in ("cpu", "memory", "pids", "systemd", "unified")
    ]
    # Relative: under runsc's own cgroup in each hierarchy.
    own = {"memory": "/mine", "cpu": "/", "": "/u"}
    p = cgroup.plan({"cgroupsPath": "ctr"}, hs, own)
    assert p is not None
    dirs = [d for _h, d in p.dirs]
    assert dirs[1] == str(tmp_path / "memory" / "mine" / "ctr")
    assert dirs[4] == str(tmp_path / "unified" / "u" / "ctr")
    assert cgroup.plan({}, hs, {}) is None
    with pytest.raises(cgroup.SystemdPathError, match="systemd"):
        cgroup.plan({"cgroupsPath": "machine.slice:libpod:x"}, hs, {})


def test_make_writes_limits_and_join_and_remove(
    hs: list[cgroup.Hierarchy], tmp_path: Path
) -> None:
    p = cgroup.plan(
        {
            "cgroupsPath": "/parent/ctr",
            "resources": {
                "memory": {"limit": 64 << 20},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                "pids": {"limit": 100},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
                "devices": [{"allow": False, "access": "rwm"}],
            },
        },
        hs,
        {},
    )
    assert p is not None
    warnings = p.make()
    # Devices and pids are the sentry's business: not a warning.
    assert len(warnings) == 1 and "hugepageLimits" in warnings[0]

    def read(*parts: str) -> str:
        return (tmp_path.joinpath(*parts)).read_text()

    assert read("memory", "parent", "ctr", "memory.limit_in_bytes") == str(64 << 20)
    assert read("cpu", "parent", "ctr", "cpu.shares") == "512"
    assert read("cpu", "parent", "ctr", "cpu.cfs_quota_us") == "50000"
    # The sentry counts its tasks against the pid limit instead.
    assert not (tmp_path / "pids" / "parent" / "ctr" / "pids.max").exists()
    # Hybrid mode: the unified hierarchy only holds the processes.
    assert os.listdir(tmp_path / "unified" / "parent" / "ctr") == []

    p.join(1234)
    assert read("systemd", "parent", "ctr", "cgroup.procs") == "1234"
    # A real cgroup directory holds only its kernel files: empty them here.
    for _h, d in p.dirs:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
    p.remove()
    assert not (tmp_path / "memory" / "parent" / "ctr").exists()
    # The parent is the client's.
    assert (tmp_path / "memory" / "parent").is_dir()
