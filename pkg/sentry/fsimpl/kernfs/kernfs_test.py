"""Tests of kernfs: walking, reading generated files, symlinks, directory
listings and the refusals of a synthetic filesystem."""

from __future__ import annotations

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import (
    DataInode,
    KernfsFilesystem,
    StaticData,
    StaticDir,
    StaticSymlink,
)
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import FilesystemType
from pkg.sentry.vfs.mount import Mount, MountNamespace
from pkg.sentry.vfs.options import GetDentryOptions, MkdirOptions, OpenOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem

CREDS = root_credentials()


class Counter(DataInode):
    """A file whose contents change on every generation and that takes
    writes."""

    def __init__(self) -> None:
        super().__init__(0o644)
        self.n = 0
        self.written = b""

    def generate(self, t: object) -> bytes:
        self.n += 1
        return b"count %d\n" % self.n

    def write(self, t: object, data: bytes, offset: int) -> int:
        self.written += data
        return len(data)


class Env:
    def __init__(self) -> None:
        self.vfs = VirtualFilesystem()
        self.counter = Counter()
        tree = StaticDir(
            {
                b"a": StaticData(b"alpha\n"),
                b"counter": self.counter,
                b"sub": StaticDir({b"b": StaticData(lambda t: b"beta")}),
                b"link": StaticSymlink(b"sub/b"),
            }
        )
        fs = KernfsFilesystem(self.vfs, FilesystemType(), tree, 0x1234)
        mnt = Mount(self.vfs, fs, fs.root)
        MountNamespace(mnt)
        self.root = VirtualDentry(mnt, fs.root)

    def pop(self, path: bytes, follow: bool = True) -> PathOperation:
        return PathOperation(self.root, self.root, path, follow)

    def read(self, path: bytes) -> bytes:
        f = self.vfs.open_at(None, CREDS, self.pop(path), OpenOptions(F.O_RDONLY))
        try:
            return f.read(None, 4096)  # type: ignore[arg-type]
        finally:
            f.dec_ref()


def test_reads_and_symlinks() -> None:
    env = Env()
    assert env.read(b"/a") == b"alpha\n"
    assert env.read(b"/sub/b") == b"beta"
    assert env.read(b"/link") == b"beta"
    assert env.vfs.readlink_at(None, CREDS, env.pop(b"/link", follow=False)) == b"sub/b"
    st = env.vfs.stat_at(None, CREDS, env.pop(b"/a"), 0)
    assert S.S_ISREG(st.mode) and st.size == 0
    st = env.vfs.stat_at(None, CREDS, env.pop(b"/link", follow=False), 0)
    assert S.S_ISLNK(st.mode)


def test_contents_are_a_snapshot_until_offset_zero() -> None:
    env = Env()
    f = env.vfs.open_at(None, CREDS, env.pop(b"/counter"), OpenOptions(F.O_RDWR))
    try:
        assert f.read(None, 3) == b"cou"  # type: ignore[arg-type]
        assert f.read(None, 100) == b"nt 1\n"  # type: ignore[arg-type]
        f.seek(None, 0, F.SEEK_SET)  # type: ignore[arg-type]
        assert f.read(None, 100) == b"count 2\n"  # type: ignore[arg-type]
        with pytest.raises(SyscallError) as e:
            f.seek(None, 0, F.SEEK_END)  # type: ignore[arg-type]
        assert e.value.errno == errno.EINVAL
        assert f.write(None, b"x") == 1  # type: ignore[arg-type]
    finally:
        f.dec_ref()
    assert env.counter.written == b"x"


def test_directory_listing_and_refusals() -> None:
    env = Env()
    f = env.vfs.open_at(None, CREDS, env.pop(b"/"), OpenOptions(F.O_RDONLY))
    names = []
    f.iterate_dirents(None, lambda d: names.append(d.name) or True)  # type: ignore[arg-type]
    f.dec_ref()
    assert names == [b".", b"..", b"a", b"counter", b"sub", b"link"]
    for op in (
        lambda: env.vfs.mkdir_at(None, CREDS, env.pop(b"/new"), MkdirOptions(0o755)),
        lambda: env.vfs.unlink_at(None, CREDS, env.pop(b"/a")),
    ):
        with pytest.raises(SyscallError) as e:
            op()
        assert e.value.errno == errno.EPERM
    with pytest.raises(SyscallError) as e:
        env.vfs.get_dentry_at(None, CREDS, env.pop(b"/nope"), GetDentryOptions())
    assert e.value.errno == errno.ENOENT
    with pytest.raises(SyscallError) as e:
        env.read(b"/a/x")
    assert e.value.errno == errno.ENOTDIR
