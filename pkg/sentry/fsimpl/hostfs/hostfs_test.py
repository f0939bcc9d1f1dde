"""Tests of hostfs: host symlinks resolve inside the sandbox, nothing is
written, and walks never follow host links."""

from __future__ import annotations

import os
import pathlib

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.hostfs.hostfs import HostfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.options import MkdirOptions, OpenOptions, SetStatOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem

CREDS = root_credentials()


class Env:
    def __init__(self, root: pathlib.Path) -> None:
        self.vfs = VirtualFilesystem()
        self.vfs.register_filesystem_type("hostfs", HostfsType(MemoryFile(1 << 24)))
        self.ns = self.vfs.new_mount_namespace(
            CREDS, "hostfs", GetFilesystemOptions(internal=str(root))
        )
        self.root = VirtualDentry(self.ns.root, self.ns.root.root)

    def pop(self, path: bytes, follow: bool = True) -> PathOperation:
        return PathOperation(self.root, self.root, path, follow)

    def read(self, path: bytes) -> bytes:
        f = self.vfs.open_at(None, CREDS, self.pop(path), OpenOptions(F.O_RDONLY))
        try:
            return f.read(None, 1 << 16)  # type: ignore[arg-type]
        finally:
            f.dec_ref()


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "file").write_bytes(b"inside")
    os.symlink("/a/file", tmp_path / "abs")
    os.symlink("../../../../../../etc/hostname", tmp_path / "up")
    os.symlink("/etc", tmp_path / "etc_link")
    os.symlink(str(tmp_path / "a"), tmp_path / "hostpath")
    return tmp_path


def _errno(fn: object, *args: object) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)  # type: ignore[operator]
    return e.value.errno


def test_reads_files(tree: pathlib.Path) -> None:
    env = Env(tree)
    assert env.read(b"/a/file") == b"inside"
    assert env.read(b"a/../a/./file") == b"inside"


def test_symlinks_resolve_inside_the_sandbox(tree: pathlib.Path) -> None:
    env = Env(tree)
    # "/a/file" means the sandbox's /a/file, i.e. tree/a/file.
    assert env.read(b"/abs") == b"inside"
    # Climbing out stops at the sandbox root.
    assert _errno(env.read, b"/up") == errno.ENOENT
    assert _errno(env.read, b"/etc_link/hostname") == errno.ENOENT
    # A host absolute path is a path inside the sandbox, not the host's.
    assert _errno(env.read, b"/hostpath/file") == errno.ENOENT
    assert env.vfs.readlink_at(None, CREDS, env.pop(b"/abs", follow=False)) == (
        b"/a/file"
    )


def test_nothing_is_written(tree: pathlib.Path) -> None:
    env = Env(tree)
    with pytest.raises(SyscallError) as e:
        env.vfs.open_at(
            None, CREDS, env.pop(b"/a/new"), OpenOptions(F.O_CREAT | F.O_RDWR, 0o644)
        )
    assert e.value.errno == errno.EROFS
    assert (
        _errno(
            env.vfs.open_at, None, CREDS, env.pop(b"/a/file"), OpenOptions(F.O_WRONLY)
        )
        == errno.EROFS
    )
    assert (
        _errno(env.vfs.mkdir_at, None, CREDS, env.pop(b"/a"), MkdirOptions(0o755))
        == errno.EEXIST
    )
    assert (
        _errno(env.vfs.mkdir_at, None, CREDS, env.pop(b"/b"), MkdirOptions(0o755))
        == errno.EROFS
    )
    assert _errno(env.vfs.unlink_at, None, CREDS, env.pop(b"/a/file")) == errno.EROFS
    assert (
        _errno(
            env.vfs.setstat_at,
            None,
            CREDS,
            env.pop(b"/a/file"),
            SetStatOptions(mask=2, mode=0o600),
        )
        == errno.EROFS
    )
    assert not (tree / "a" / "new").exists()
    assert (tree / "a" / "file").stat().st_mode & 0o777 != 0o600


def test_replaced_directory_is_not_followed(tree: pathlib.Path) -> None:
    env = Env(tree)
    assert env.read(b"/a/file") == b"inside"
    # The host swaps a directory for a symlink behind the sandbox's back.
    (tree / "a" / "file").unlink()
    (tree / "a").rmdir()
    os.symlink("/etc", tree / "a")
    assert _errno(env.read, b"/a/hostname") == errno.ENOENT


def test_getdents(tree: pathlib.Path) -> None:
    env = Env(tree)
    f = env.vfs.open_at(None, CREDS, env.pop(b"/"), OpenOptions(F.O_RDONLY))
    names = []
    f.iterate_dirents(None, lambda d: names.append(d.name) or True)  # type: ignore[arg-type]
    f.dec_ref()
    assert sorted(names) == sorted(
        [b".", b"..", b"a", b"abs", b"up", b"etc_link", b"hostpath"]
    )
