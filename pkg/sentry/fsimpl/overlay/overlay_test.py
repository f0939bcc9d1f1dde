"""Tests of the overlay: a tmpfs upper over a read-only gofer lower, as the
container root is built, checked against what Linux's overlayfs shows and
against the host tree, which must never change."""

from __future__ import annotations

import os
import socket
import stat as host_stat
import threading
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.gofer import server
from pkg.gofer.client import Client
from pkg.sentry.fsimpl.gofer.gofer import GoferMountOptions, GoferType
from pkg.sentry.fsimpl.overlay.overlay import OverlayOptions, OverlayType
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.options import (
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    RenameOptions,
    SetStatOptions,
    SetXattrOptions,
)
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem


def snapshot(top: str) -> dict[str, tuple]:
    """Returns everything observable about a host tree."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if host_stat.S_ISLNK(st.st_mode):
                content = os.readlink(p).encode()
            elif host_stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    content = f.read()
            else:
                content = b""
            xattrs = tuple(sorted(os.listxattr(p, follow_symlinks=False)))
            out[os.path.relpath(p, top)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_nlink,
                st.st_mtime_ns,
                content,
                xattrs,
            )
    return out


class Sandbox:
    """A VFS whose root is an overlay of tmpfs over a read-only gofer mount
    of a host directory."""

    def __init__(self, host_dir: str) -> None:
        ours, theirs = socket.socketpair()
        self._proc_fd = server.open_proc_fd()
        root_fd = os.open(host_dir, os.O_PATH | os.O_CLOEXEC)
        conn = server.Connection(
            theirs, root_fd, server.Policy(read_only=True), self._proc_fd
        )
        self._thread = threading.Thread(target=conn.serve, daemon=True)
        self._thread.start()
        self.mf = MemoryFile(size=64 << 20)
        self.vfs = VirtualFilesystem()
        self.vfs.register_filesystem_type("gofer", GoferType(self.mf))
        self.vfs.register_filesystem_type("tmpfs", TmpfsType(self.mf))
        self.vfs.register_filesystem_type("overlay", OverlayType())
        self.creds = root_credentials()
        lower_fs, lower_root = self.vfs.new_filesystem(
            self.creds,
            "gofer",
            GetFilesystemOptions(internal=GoferMountOptions(Client(ours))),
        )
        upper_fs, upper_root = self.vfs.new_filesystem(
            self.creds, "tmpfs", GetFilesystemOptions()
        )
        lower = self.vfs.new_disconnected_mount(lower_fs, lower_root)
        upper = self.vfs.new_disconnected_mount(upper_fs, upper_root)
        self.ns = self.vfs.new_mount_namespace(
            self.creds,
            "overlay",
            GetFilesystemOptions(
                internal=OverlayOptions(
                    VirtualDentry(upper, upper_root), VirtualDentry(lower, lower_root)
                )
            ),
        )
        self.root = VirtualDentry(self.ns.root, self.ns.root.root)
        self.fs = self.ns.root.fs
        self.lower_fs = lower_fs

    def close(self) -> None:
        self.lower_fs.release()
        self._thread.join()
        os.close(self._proc_fd)

    def pop(self, path: bytes, follow: bool = True) -> PathOperation:
        return PathOperation(root=self.root, start=self.root, path=path, follow=follow)

    def open(self, path: bytes, flags: int, mode: int = 0o644):
        follow = not flags & F.O_NOFOLLOW and not (
            flags & F.O_CREAT and flags & F.O_EXCL
        )
        return self.vfs.open_at(
            None, self.creds, self.pop(path, follow), OpenOptions(flags, mode)
        )

    def read(self, path: bytes) -> bytes:
        fd = self.open(path, F.O_RDONLY)
        try:
            return fd.pread(None, 1 << 20, 0)
        finally:
            fd.dec_ref()

    def write(
        self, path: bytes, data: bytes, flags: int = F.O_WRONLY | F.O_CREAT | F.O_TRUNC
    ) -> None:
        fd = self.open(path, flags)
        try:
            fd.write(None, data)
        finally:
            fd.dec_ref()

    def stat(self, path: bytes, follow: bool = True) -> S.Statx:
        return self.vfs.stat_at(
            None, self.creds, self.pop(path, follow), S.STATX_BASIC_STATS
        )

    def listdir(self, path: bytes) -> list[bytes]:
        fd = self.open(path, F.O_RDONLY | F.O_DIRECTORY)
        names: list[bytes] = []
        try:
            fd.iterate_dirents(None, lambda d: names.append(d.name) or True)
        finally:
            fd.dec_ref()
        return sorted(n for n in names if n not in (b".", b".."))

    def unlink(self, path: bytes) -> None:
        self.vfs.unlink_at(None, self.creds, self.pop(path, False))

    def rmdir(self, path: bytes) -> None:
        self.vfs.rmdir_at(None, self.creds, self.pop(path, False))

    def mkdir(self, path: bytes, mode: int = 0o755) -> None:
        self.vfs.mkdir_at(None, self.creds, self.pop(path, False), MkdirOptions(mode))

    def rename(self, old: bytes, new: bytes, flags: int = 0) -> None:
        self.vfs.rename_at(
            None,
            self.creds,
            self.pop(old, False),
            self.pop(new, False),
            RenameOptions(flags),
        )


def errno_of(fn, *args) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)
    return e.value.errno


@pytest.fixture
def host(tmp_path) -> str:
    root = tmp_path / "root"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "file").write_bytes(b"lower file")
    (root / "dir" / "a").write_bytes(b"A")
    (root / "dir" / "sub" / "b").write_bytes(b"B")
    os.symlink("dir/a", root / "link")
    os.chmod(root / "file", 0o640)
    os.chown(root / "file", 123, 456)
    os.utime(root / "file", ns=(10**9, 2 * 10**9))
    os.setxattr(root / "file", "user.x", b"1")
    with open(root / "sparse", "wb") as f:
        f.truncate(8 << 20)
        f.seek(4 << 20)
        f.write(b"middle")
    return str(root)


@pytest.fixture
def sb(host) -> Iterator[Sandbox]:
    before = snapshot(host)
    s = Sandbox(host)
    yield s
    s.close()
    # Nothing the overlay did may reach the host.
    assert snapshot(host) == before


class TestReading:
    def test_lower_visible(self, sb):
        assert sb.read(b"/file") == b"lower file"
        assert sb.read(b"/link") == b"A"
        assert sb.listdir(b"/") == [b"dir", b"empty", b"file", b"link", b"sparse"]
        st = sb.stat(b"/file")
        assert (st.mode & 0o7777, st.uid, st.gid) == (0o640, 123, 456)
        assert (st.dev_major, st.dev_minor) == (sb.fs.dev_major, sb.fs.dev_minor)

    def test_statfs_is_overlay(self, sb):
        assert (
            sb.vfs.statfs_at(None, sb.creds, sb.pop(b"/")).type
            == FS.OVERLAYFS_SUPER_MAGIC
        )


class TestCopyUp:
    def test_write_copies_up(self, sb):
        ino = sb.stat(b"/file").ino
        sb.write(b"/file", b"new", F.O_WRONLY)
        assert sb.read(b"/file") == b"newer file"
        st = sb.stat(b"/file")
        assert st.ino == ino
        assert (st.mode & 0o7777, st.uid, st.gid) == (0o640, 123, 456)
        assert sb.vfs.getxattr_at(None, sb.creds, sb.pop(b"/file"), b"user.x") == b"1"

    def test_truncating_open(self, sb):
        sb.write(b"/file", b"x", F.O_WRONLY | F.O_TRUNC)
        assert sb.read(b"/file") == b"x"

    def test_times_preserved(self, sb):
        sb.vfs.setxattr_at(
            None, sb.creds, sb.pop(b"/file"), SetXattrOptions(b"user.y", b"2")
        )
        assert sb.stat(b"/file").mtime_ns == 2 * 10**9

    def test_sparse_contents(self, sb):
        sb.write(b"/sparse", b"M", F.O_WRONLY)
        fd = sb.open(b"/sparse", F.O_RDONLY)
        try:
            assert fd.pread(None, 7, 4 << 20) == b"middle\0"
            assert fd.pread(None, 4, 0) == b"M\0\0\0"
        finally:
            fd.dec_ref()
        assert sb.stat(b"/sparse").size == 8 << 20

    def test_reader_sees_later_writes(self, sb):
        r = sb.open(b"/file", F.O_RDONLY)
        try:
            assert r.read(None, 5) == b"lower"
            sb.write(b"/file", b"LOWER FILE", F.O_WRONLY)
            assert r.read(None, 100) == b" FILE"
        finally:
            r.dec_ref()

    def test_chmod_chown(self, sb):
        sb.vfs.setstat_at(
            None,
            sb.creds,
            sb.pop(b"/dir/sub/b"),
            SetStatOptions(mask=S.STATX_MODE | S.STATX_UID, mode=0o600, uid=7),
        )
        st = sb.stat(b"/dir/sub/b")
        assert (st.mode & 0o7777, st.uid) == (0o600, 7)
        assert sb.read(b"/dir/sub/b") == b"B"
        # The parents were copied up without their entries, which still show.
        assert sb.listdir(b"/dir") == [b"a", b"sub"]

    def test_hard_link(self, sb):
        sb.vfs.link_at(None, sb.creds, sb.pop(b"/file"), sb.pop(b"/dir/hard"))
        assert sb.stat(b"/dir/hard").ino == sb.stat(b"/file").ino
        assert sb.stat(b"/file").nlink == 2
        sb.write(b"/dir/hard", b"both", F.O_WRONLY)
        assert sb.read(b"/file") == b"bothr file"


class TestCreateRemove:
    def test_create(self, sb):
        sb.write(b"/dir/new", b"fresh")
        assert sb.read(b"/dir/new") == b"fresh"
        assert sb.listdir(b"/dir") == [b"a", b"new", b"sub"]
        assert sb.stat(b"/dir/new").ino != sb.stat(b"/dir/a").ino

    def test_unlink_whiteout(self, sb):
        sb.unlink(b"/file")
        assert errno_of(sb.stat, b"/file") == errno.ENOENT
        assert b"file" not in sb.listdir(b"/")
        sb.write(b"/file", b"reborn", F.O_WRONLY | F.O_CREAT | F.O_EXCL)
        assert sb.read(b"/file") == b"reborn"
        assert sb.listdir(b"/").count(b"file") == 1

    def test_rmdir(self, sb):
        assert errno_of(sb.rmdir, b"/dir") == errno.ENOTEMPTY
        sb.unlink(b"/dir/a")
        sb.unlink(b"/dir/sub/b")
        sb.rmdir(b"/dir/sub")
        assert sb.listdir(b"/dir") == []
        sb.rmdir(b"/dir")
        assert errno_of(sb.stat, b"/dir") == errno.ENOENT
        # A directory made again is opaque: the lower one's entries are gone.
        sb.mkdir(b"/dir")
        assert sb.listdir(b"/dir") == []
        assert errno_of(sb.stat, b"/dir/a") == errno.ENOENT

    def test_rmdir_empty_lower(self, sb):
        sb.rmdir(b"/empty")
        assert b"empty" not in sb.listdir(b"/")

    def test_symlink(self, sb):
        sb.vfs.symlink_at(None, sb.creds, sb.pop(b"/s"), b"file")
        assert sb.read(b"/s") == b"lower file"
        assert sb.vfs.readlink_at(None, sb.creds, sb.pop(b"/s", False)) == b"file"

    def test_mknod_fifo(self, sb):
        sb.vfs.mknod_at(None, sb.creds, sb.pop(b"/p"), MknodOptions(S.S_IFIFO | 0o600))
        r = sb.open(b"/p", F.O_RDONLY | F.O_NONBLOCK)
        w = sb.open(b"/p", F.O_WRONLY | F.O_NONBLOCK)
        try:
            w.write(None, b"hi")
            assert r.read(None, 10) == b"hi"
        finally:
            r.dec_ref()
            w.dec_ref()


class TestRename:
    def test_file(self, sb):
        sb.rename(b"/file", b"/dir/moved")
        assert sb.read(b"/dir/moved") == b"lower file"
        assert errno_of(sb.stat, b"/file") == errno.ENOENT
        assert b"file" not in sb.listdir(b"/")

    def test_lower_directory(self, sb):
        # Unlike Linux without redirect_dir, no EXDEV: the moved directory
        # keeps its lower entries.
        sb.rename(b"/dir", b"/dir2")
        assert sb.listdir(b"/dir2") == [b"a", b"sub"]
        assert sb.read(b"/dir2/sub/b") == b"B"
        assert errno_of(sb.stat, b"/dir") == errno.ENOENT
        assert sb.listdir(b"/") == [b"dir2", b"empty", b"file", b"link", b"sparse"]
        sb.mkdir(b"/dir")
        assert sb.listdir(b"/dir") == []

    def test_over_existing(self, sb):
        sb.rename(b"/file", b"/dir/a")
        assert sb.read(b"/dir/a") == b"lower file"
        assert sb.listdir(b"/dir") == [b"a", b"sub"]

    def test_directory_over_empty_lower_directory(self, sb):
        sb.rename(b"/dir", b"/empty")
        assert sb.listdir(b"/empty") == [b"a", b"sub"]

    def test_onto_non_empty(self, sb):
        assert errno_of(sb.rename, b"/empty", b"/dir") == errno.ENOTEMPTY

    def test_exchange(self, sb):
        sb.rename(b"/file", b"/dir/a", F.RENAME_EXCHANGE)
        assert sb.read(b"/file") == b"A"
        assert sb.read(b"/dir/a") == b"lower file"

    def test_noreplace(self, sb):
        assert (
            errno_of(sb.rename, b"/file", b"/dir/a", F.RENAME_NOREPLACE) == errno.EEXIST
        )

    def test_into_itself(self, sb):
        assert errno_of(sb.rename, b"/dir", b"/dir/sub/x") == errno.EINVAL


def test_rename_between_hard_links_does_nothing(sb):
    sb.vfs.link_at(None, sb.creds, sb.pop(b"/file"), sb.pop(b"/hard"))
    sb.rename(b"/file", b"/hard")
    assert sb.read(b"/file") == b"lower file"
    assert sb.read(b"/hard") == b"lower file"
    assert sb.stat(b"/file").nlink == 2


def test_tmpfile_then_link(sb):
    fd = sb.vfs.open_at(
        None, sb.creds, sb.pop(b"/dir"), OpenOptions(F.O_TMPFILE | F.O_RDWR, 0o600)
    )
    try:
        fd.write(None, b"unnamed")
        assert fd.stat(None, 0).nlink == 0
        assert sb.listdir(b"/dir") == [b"a", b"sub"]
        sb.vfs.link_at(
            None,
            sb.creds,
            PathOperation(root=sb.root, start=fd.vd, path=b"", follow=False),
            sb.pop(b"/dir/named"),
        )
    finally:
        fd.dec_ref()
    assert sb.read(b"/dir/named") == b"unnamed"
    assert sb.listdir(b"/dir") == [b"a", b"named", b"sub"]


def test_operations_in_a_mount_on_the_overlay(sb):
    # Resolution leaves the overlay for the mount on /empty: nothing the
    # overlay refuses for itself may be refused there.
    sb.vfs.mount_at(None, sb.creds, sb.pop(b"/empty"), "tmpfs", GetFilesystemOptions())
    sb.write(b"/empty/a", b"A")
    sb.vfs.link_at(None, sb.creds, sb.pop(b"/empty/a"), sb.pop(b"/empty/b"))
    sb.rename(b"/empty/a", b"/empty/c", F.RENAME_WHITEOUT)
    assert sb.stat(b"/empty/a").mode & S.S_IFMT == S.S_IFCHR
    fd = sb.vfs.open_at(
        None, sb.creds, sb.pop(b"/empty"), OpenOptions(F.O_TMPFILE | F.O_RDWR, 0o600)
    )
    fd.dec_ref()
    assert (
        errno_of(sb.vfs.link_at, None, sb.creds, sb.pop(b"/empty/b"), sb.pop(b"/dir/x"))
        == errno.EXDEV
    )
