"""Tests of finding a container's executable and working directory from
the host, with the spec's mounts taken into account."""

from __future__ import annotations

import os

import pytest

from runsc.container import rootfs


@pytest.fixture
def root(tmp_path):
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "prog"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return str(tmp_path)


ENV = ["PATH=/usr/bin:/bin"]


def test_found_in_the_root(root):
    assert rootfs.resolve_process(root, "prog", ENV, "/", []) == "/bin/prog"
    assert rootfs.resolve_process(root, "/bin/prog", ENV, "/", []) == "/bin/prog"


def test_missing_without_mounts(root):
    with pytest.raises(rootfs.ExecutableError, match="not found in \\$PATH"):
        rootfs.resolve_process(root, "other", ENV, "/", [])
    with pytest.raises(rootfs.ExecutableError, match="no such file"):
        rootfs.resolve_process(root, "/sbin/init", ENV, "/", [])
    with pytest.raises(rootfs.ExecutableError, match="chdir"):
        rootfs.resolve_process(root, "prog", ENV, "/work", [])


def test_left_to_the_sandbox_under_mounts(root):
    mounts = [
        {"destination": "/sbin/docker-init", "type": "bind", "source": "/x"},
        {"destination": "/usr/bin/", "type": "bind", "source": "/y"},
        {"destination": "/work", "type": "tmpfs"},
    ]
    got = rootfs.resolve_process(root, "/sbin/docker-init", ENV, "/work", mounts)
    assert got == "/sbin/docker-init"
    # A name that PATH may find in a mount: the sandbox searches PATH.
    assert rootfs.resolve_process(root, "other", ENV, "/", mounts) == "other"
    # Outside every mount it is still refused here.
    with pytest.raises(rootfs.ExecutableError):
        rootfs.resolve_process(root, "/opt/x", ENV, "/", mounts)
    assert not os.path.exists(os.path.join(root, "work"))


def test_init_working_directory_may_be_missing(root):
    got = rootfs.resolve_process(root, "prog", ENV, "/new/dir", [], make_cwd=True)
    assert got == "/bin/prog"
    (open(os.path.join(root, "file"), "w")).close()
    with pytest.raises(rootfs.ExecutableError, match="chdir"):
        rootfs.resolve_process(root, "prog", ENV, "/file/dir", [], make_cwd=True)
