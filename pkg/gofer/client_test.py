"""Tests of the client's path resolution: symlinks are followed on the client,
inside the mount, and nothing resolves to a host file outside it."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from pkg.gofer.testutil import LocalGofer


@pytest.fixture
def layout(tmp_path) -> tuple[str, str]:
    """A container root and, beside it, host files it must not reach."""
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "passwd").write_bytes(b"HOST")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(b"CONTAINER")
    (root / "a" / "b").mkdir(parents=True)
    # Symlinks planted by whoever built the image, all aiming outside.
    os.symlink(str(outside / "etc"), root / "abs")
    os.symlink("../outside/etc", root / "rel")
    os.symlink("../../../../../../../outside/etc", root / "a" / "b" / "deep")
    os.symlink(str(outside / "etc" / "passwd"), root / "abs_file")
    os.symlink("/etc", root / "etc_abs")
    os.symlink("loop", root / "loop")
    return str(root), str(outside)


@pytest.fixture
def gofer(layout) -> Iterator[LocalGofer]:
    g = LocalGofer(layout[0])
    yield g
    g.close()


def read(g: LocalGofer, path: bytes) -> bytes:
    inode = g.client.resolve(g.root.node, path)
    fd = g.client.open(inode.node, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)
        g.client.close_nodes([inode.node])


def resolve_errno(g: LocalGofer, path: bytes) -> int:
    with pytest.raises(OSError) as e:
        g.client.resolve(g.root.node, path)
    return e.value.errno


class TestResolve:
    def test_plain(self, gofer):
        assert read(gofer, b"/etc/passwd") == b"CONTAINER"
        assert read(gofer, b"etc//./passwd") == b"CONTAINER"

    def test_absolute_symlink_restarts_at_mount_root(self, gofer):
        assert read(gofer, b"etc_abs/passwd") == b"CONTAINER"

    def test_planted_absolute_symlink_stays_inside(self, gofer, layout):
        # abs -> <outside>/etc: resolved inside the root, where no such path
        # exists.
        assert resolve_errno(gofer, b"abs/passwd") == errno.ENOENT
        assert resolve_errno(gofer, b"abs_file") == errno.ENOENT

    def test_planted_relative_symlinks_clamp_at_root(self, gofer):
        # ../outside/etc from the root is /outside/etc inside the root.
        assert resolve_errno(gofer, b"rel/passwd") == errno.ENOENT
        # Any number of .. stops at the root, then outside/etc is missing.
        assert resolve_errno(gofer, b"a/b/deep/passwd") == errno.ENOENT

    def test_dotdot_at_root_stays_at_root(self, gofer):
        assert read(gofer, b"../../../../etc/passwd") == b"CONTAINER"
        assert read(gofer, b"a/../../../etc/passwd") == b"CONTAINER"
        inode = gofer.client.resolve(gofer.root.node, b"/..")
        assert inode.node == gofer.root.node

    def test_escape_when_the_target_exists_inside(self, gofer, layout):
        # When the container has a file at the path the link names, that is
        # what is reached: still the container's file, never the host's.
        root, outside = layout
        os.makedirs(root + outside + "/etc")
        with open(root + outside + "/etc/passwd", "wb") as h:
            h.write(b"INSIDE")
        assert read(gofer, b"abs/passwd") == b"INSIDE"
        assert read(gofer, b"abs_file") == b"INSIDE"

    def test_nofollow_final(self, gofer):
        inode = gofer.client.resolve(gofer.root.node, b"abs", follow=False)
        assert gofer.client.readlink(inode.node).endswith(b"/outside/etc")

    def test_loop(self, gofer):
        assert resolve_errno(gofer, b"loop") == errno.ELOOP

    def test_enotdir(self, gofer):
        assert resolve_errno(gofer, b"etc/passwd/x") == errno.ENOTDIR

    def test_no_node_leaks(self, gofer):
        before = len(gofer.connection._nodes)
        for path in (b"abs/passwd", b"a/b/deep/passwd", b"loop", b"etc/passwd/x"):
            resolve_errno(gofer, path)
        inode = gofer.client.resolve(gofer.root.node, b"a/b/../b/../../etc_abs/passwd")
        gofer.client.close_nodes([inode.node])
        assert len(gofer.connection._nodes) == before
