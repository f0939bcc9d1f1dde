"""Unit tests of procfs renderers that need no running kernel: sysctl
tunables, cpuinfo, CPU lists and mount path escaping."""

from __future__ import annotations

import uuid

import pytest

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.proc import mounts, system, task_files
from pkg.sentry.fsimpl.proc.sysctl import Tunable, random_uuid


def test_tunable_keeps_numbers_in_their_shape() -> None:
    t = Tunable("32768\t60999")
    t.set(None, " 1024  2048 ")  # type: ignore[arg-type]
    assert t.get(None) == "1024\t2048"
    for bad in ("", "1", "a b", "1 2 3"):
        with pytest.raises(SyscallError) as e:
            t.set(None, bad)  # type: ignore[arg-type]
        assert e.value.errno == errno.EINVAL
    text = Tunable("core")
    text.set(None, "|/usr/bin/dump %p")  # type: ignore[arg-type]
    assert text.get(None) == "|/usr/bin/dump %p"


def test_cpuinfo_numbers_each_cpu() -> None:
    facts = system.HostFacts(
        (
            ("processor\t", "7"),
            ("model name\t", "Some CPU"),
            ("core id\t\t", "3"),
            ("cpu cores\t", "16"),
        ),
    )
    text = system.cpuinfo(facts, 2).decode()
    blocks = text.strip("\n").split("\n\n")
    assert len(blocks) == 2
    assert blocks[1].splitlines() == [
        "processor\t: 1",
        "model name\t: Some CPU",
        "core id\t\t: 1",
        "cpu cores\t: 2",
    ]


def test_cpu_lists() -> None:
    assert task_files._cpu_list(0b1011) == "0-1,3"
    assert task_files._cpu_list(1) == "0"
    assert task_files._cpu_hex(0b11, 2) == "3"


def test_mount_paths_are_escaped() -> None:
    assert mounts._escape(b"/a b\tc\\d\ne") == "/a\\040b\\011c\\134d\\012e"


def test_random_uuid_is_a_version_4_uuid() -> None:
    ids = {random_uuid() for _ in range(64)}
    assert len(ids) == 64
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text
        assert u.version == 4
        assert u.variant == uuid.RFC_4122
