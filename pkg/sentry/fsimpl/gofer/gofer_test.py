"""Tests of the gofer client filesystem through the VFS, against a gofer
served on a thread over a socketpair."""

from __future__ import annotations

import os
import socket
import stat as host_stat
import threading
from collections.abc import Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.gofer import server
from pkg.gofer.client import Client
from pkg.sentry.fsimpl.gofer.gofer import GoferMountOptions, GoferType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.options import (
    GetDentryOptions,
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    RenameOptions,
    SetStatOptions,
    SetXattrOptions,
)
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem


class Sandbox:
    """A VFS whose root is a gofer mount of a host directory."""

    def __init__(
        self,
        host_dir: str,
        policy: server.Policy | None = None,
        max_nodes: int = 4096,
    ) -> None:
        ours, theirs = socket.socketpair()
        self._proc_fd = server.open_proc_fd()
        root_fd = os.open(host_dir, os.O_PATH | os.O_CLOEXEC)
        self.conn = server.Connection(
            theirs, root_fd, policy or server.Policy(), self._proc_fd
        )
        self._thread = threading.Thread(target=self.conn.serve, daemon=True)
        self._thread.start()
        self.mf = MemoryFile(size=16 << 20)
        self.vfs = VirtualFilesystem()
        self.vfs.register_filesystem_type("gofer", GoferType(self.mf))
        self.creds = root_credentials()
        self.ns = self.vfs.new_mount_namespace(
            self.creds,
            "gofer",
            GetFilesystemOptions(internal=GoferMountOptions(Client(ours), max_nodes)),
        )
        self.root = VirtualDentry(self.ns.root, self.ns.root.root)
        self.fs = self.ns.root.fs

    def close(self) -> None:
        self.fs.release()
        self._thread.join()
        os.close(self._proc_fd)

    def pop(self, path: bytes, follow: bool = True) -> PathOperation:
        return PathOperation(root=self.root, start=self.root, path=path, follow=follow)

    def open(self, path: bytes, flags: int, mode: int = 0o644, creds=None):
        # As open(2) does: O_NOFOLLOW and O_CREAT|O_EXCL do not follow.
        follow = not flags & F.O_NOFOLLOW and not (
            flags & F.O_CREAT and flags & F.O_EXCL
        )
        return self.vfs.open_at(
            None, creds or self.creds, self.pop(path, follow), OpenOptions(flags, mode)
        )

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


def errno_of(fn, *args) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args)
    return e.value.errno


@pytest.fixture
def host(tmp_path) -> str:
    root = tmp_path / "root"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "file").write_bytes(b"hello")
    (root / "dir" / "inner").write_bytes(b"inner")
    os.symlink("dir/inner", root / "link")
    os.symlink("/dir", root / "abslink")
    os.chmod(root / "dir" / "sub", 0o700)
    return str(root)


@pytest.fixture
def sb(host) -> Iterator[Sandbox]:
    s = Sandbox(host)
    yield s
    s.close()


class TestLookup:
    def test_stat(self, sb, host):
        st = sb.stat(b"/file")
        assert S.S_ISREG(st.mode)
        assert st.size == 5
        assert st.ino == os.stat(f"{host}/file").st_ino
        assert (st.dev_major, st.dev_minor) == (sb.fs.dev_major, sb.fs.dev_minor)

    def test_symlinks_resolved_in_sandbox(self, sb):
        assert S.S_ISLNK(sb.stat(b"/link", follow=False).mode)
        assert sb.stat(b"/link").size == 5
        assert S.S_ISDIR(sb.stat(b"/abslink").mode)
        assert sb.stat(b"/abslink/inner").size == 5
        assert (
            sb.vfs.readlink_at(None, sb.creds, sb.pop(b"/link", follow=False))
            == b"dir/inner"
        )

    def test_dotdot_at_root(self, sb):
        assert sb.stat(b"/../../file").size == 5
        assert sb.stat(b"/dir/../dir/./inner").size == 5

    def test_missing_is_cached(self, sb, host):
        assert errno_of(sb.stat, b"/nope") == errno.ENOENT
        # Exclusive access: a file appearing behind the sentry's back is not
        # seen once its absence is known.
        open(f"{host}/nope", "w").close()
        assert errno_of(sb.stat, b"/nope") == errno.ENOENT

    def test_enotdir(self, sb):
        assert errno_of(sb.stat, b"/file/x") == errno.ENOTDIR
        assert errno_of(sb.stat, b"/file/") == errno.ENOTDIR

    def test_permission_checked_in_sandbox(self, sb):
        user = sb.creds.with_changes(
            ruid=1000, euid=1000, fsuid=1000, permitted=0, effective=0
        )
        pop = sb.pop(b"/dir/sub/x")
        n = errno_of(sb.vfs.stat_at, None, user, pop, S.STATX_BASIC_STATS)
        assert n == errno.EACCES
        assert errno_of(sb.open, b"/file", F.O_WRONLY, 0, user) == errno.EACCES
        fd = sb.open(b"/file", F.O_RDONLY, 0, user)
        fd.dec_ref()


class TestReadWrite:
    def test_read(self, sb):
        fd = sb.open(b"/file", F.O_RDONLY)
        try:
            assert fd.read(None, 3) == b"hel"
            assert fd.read(None, 10) == b"lo"
            assert fd.read(None, 10) == b""
            assert fd.pread(None, 10, 1) == b"ello"
            assert errno_of(fd.write, None, b"x") == errno.EBADF
        finally:
            fd.dec_ref()

    def test_write_reaches_host(self, sb, host):
        fd = sb.open(b"/file", F.O_WRONLY)
        try:
            assert fd.write(None, b"J") == 1
            assert fd.pwrite(None, b"!!", 5) == 2
        finally:
            fd.dec_ref()
        with open(f"{host}/file", "rb") as h:
            assert h.read() == b"Jello!!"
        assert sb.stat(b"/file").size == 7

    def test_append(self, sb, host):
        fd = sb.open(b"/file", F.O_WRONLY | F.O_APPEND)
        try:
            fd.write(None, b" world")
        finally:
            fd.dec_ref()
        with open(f"{host}/file", "rb") as h:
            assert h.read() == b"hello world"

    def test_truncate_on_open(self, sb, host):
        sb.open(b"/file", F.O_WRONLY | F.O_TRUNC).dec_ref()
        assert os.path.getsize(f"{host}/file") == 0
        assert sb.stat(b"/file").size == 0

    def test_seek_end(self, sb):
        fd = sb.open(b"/file", F.O_RDONLY)
        try:
            assert fd.seek(None, -2, F.SEEK_END) == 3
            assert fd.read(None, 10) == b"lo"
        finally:
            fd.dec_ref()

    def test_open_directory_for_write(self, sb):
        assert errno_of(sb.open, b"/dir", F.O_WRONLY) == errno.EISDIR

    def test_open_nofollow_symlink(self, sb):
        assert errno_of(sb.open, b"/link", F.O_RDONLY | F.O_NOFOLLOW) == errno.ELOOP

    def test_o_directory_on_file(self, sb):
        assert errno_of(sb.open, b"/file", F.O_RDONLY | F.O_DIRECTORY) == errno.ENOTDIR


class TestCreateRemove:
    def test_create(self, sb, host):
        fd = sb.open(b"/dir/new", F.O_WRONLY | F.O_CREAT | F.O_EXCL, 0o640)
        try:
            fd.write(None, b"data")
        finally:
            fd.dec_ref()
        st = os.lstat(f"{host}/dir/new")
        assert host_stat.S_IMODE(st.st_mode) == 0o640
        with open(f"{host}/dir/new", "rb") as h:
            assert h.read() == b"data"
        assert b"new" in sb.listdir(b"/dir")
        assert errno_of(sb.open, b"/dir/new", F.O_CREAT | F.O_EXCL) == errno.EEXIST

    def test_create_through_dangling_symlink(self, sb, host):
        os.symlink("made", f"{host}/dangling")
        sb.open(b"/dangling", F.O_WRONLY | F.O_CREAT).dec_ref()
        assert os.path.exists(f"{host}/made")

    def test_mkdir_rmdir(self, sb, host):
        sb.vfs.mkdir_at(None, sb.creds, sb.pop(b"/d2"), MkdirOptions(0o755))
        assert os.path.isdir(f"{host}/d2")
        assert (
            errno_of(
                sb.vfs.mkdir_at, None, sb.creds, sb.pop(b"/d2"), MkdirOptions(0o755)
            )
            == errno.EEXIST
        )
        sb.vfs.rmdir_at(None, sb.creds, sb.pop(b"/d2"))
        assert not os.path.exists(f"{host}/d2")
        assert errno_of(sb.stat, b"/d2") == errno.ENOENT

    def test_rmdir_not_empty(self, sb):
        n = errno_of(sb.vfs.rmdir_at, None, sb.creds, sb.pop(b"/dir"))
        assert n == errno.ENOTEMPTY
        assert S.S_ISDIR(sb.stat(b"/dir").mode)

    def test_unlink(self, sb, host):
        sb.vfs.unlink_at(None, sb.creds, sb.pop(b"/file"))
        assert not os.path.exists(f"{host}/file")
        assert errno_of(sb.stat, b"/file") == errno.ENOENT
        assert (
            errno_of(sb.vfs.unlink_at, None, sb.creds, sb.pop(b"/dir")) == errno.EISDIR
        )

    def test_unlinked_open_file_still_works(self, sb, host):
        fd = sb.open(b"/file", F.O_RDWR)
        try:
            sb.vfs.unlink_at(None, sb.creds, sb.pop(b"/file"))
            fd.pwrite(None, b"X", 0)
            assert fd.pread(None, 10, 0) == b"Xello"
            assert fd.stat(None, 0).nlink == 0
        finally:
            fd.dec_ref()

    def test_symlink_and_link(self, sb, host):
        sb.vfs.symlink_at(None, sb.creds, sb.pop(b"/sl"), b"file")
        assert os.readlink(f"{host}/sl") == "file"
        sb.vfs.link_at(None, sb.creds, sb.pop(b"/file"), sb.pop(b"/hard"))
        assert os.stat(f"{host}/hard").st_ino == os.stat(f"{host}/file").st_ino
        assert sb.stat(b"/hard").nlink == 2
        assert sb.stat(b"/file").nlink == 2
        assert sb.stat(b"/hard").ino == sb.stat(b"/file").ino

    def test_mknod_fifo_is_a_sandbox_pipe(self, sb, host):
        sb.vfs.mknod_at(
            None, sb.creds, sb.pop(b"/fifo"), MknodOptions(S.S_IFIFO | 0o600)
        )
        assert host_stat.S_ISFIFO(os.lstat(f"{host}/fifo").st_mode)
        r = sb.open(b"/fifo", F.O_RDONLY | F.O_NONBLOCK)
        w = sb.open(b"/fifo", F.O_WRONLY | F.O_NONBLOCK)
        try:
            w.write(None, b"through the sentry")
            assert r.read(None, 100) == b"through the sentry"
        finally:
            r.dec_ref()
            w.dec_ref()

    def test_rename(self, sb, host):
        sb.vfs.rename_at(
            None, sb.creds, sb.pop(b"/file"), sb.pop(b"/dir/moved"), RenameOptions()
        )
        with open(f"{host}/dir/moved", "rb") as h:
            assert h.read() == b"hello"
        assert errno_of(sb.stat, b"/file") == errno.ENOENT
        assert sb.stat(b"/dir/moved").size == 5

    def test_rename_over(self, sb, host):
        sb.vfs.rename_at(
            None, sb.creds, sb.pop(b"/file"), sb.pop(b"/dir/inner"), RenameOptions()
        )
        with open(f"{host}/dir/inner", "rb") as h:
            assert h.read() == b"hello"

    def test_rename_dir_into_itself(self, sb):
        n = errno_of(
            sb.vfs.rename_at,
            None,
            sb.creds,
            sb.pop(b"/dir"),
            sb.pop(b"/dir/sub/x"),
            RenameOptions(),
        )
        assert n == errno.EINVAL

    def test_rename_exchange(self, sb, host):
        sb.vfs.rename_at(
            None,
            sb.creds,
            sb.pop(b"/file"),
            sb.pop(b"/dir/inner"),
            RenameOptions(flags=2),
        )
        with open(f"{host}/file", "rb") as h:
            assert h.read() == b"inner"
        fd = sb.open(b"/dir/inner", F.O_RDONLY)
        assert fd.read(None, 10) == b"hello"
        fd.dec_ref()

    def test_listdir(self, sb):
        assert sb.listdir(b"/") == [b"abslink", b"dir", b"file", b"link"]
        assert sb.listdir(b"/dir") == [b"inner", b"sub"]


class TestAttributes:
    def test_chmod_chown_utimes_truncate(self, sb, host):
        sb.vfs.setstat_at(
            None,
            sb.creds,
            sb.pop(b"/file"),
            SetStatOptions(
                mask=S.STATX_MODE
                | S.STATX_UID
                | S.STATX_GID
                | S.STATX_SIZE
                | S.STATX_MTIME,
                mode=0o600,
                uid=12,
                gid=34,
                size=2,
                mtime_ns=5 * 10**9,
            ),
        )
        st = os.lstat(f"{host}/file")
        assert (host_stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size) == (
            0o600,
            12,
            34,
            2,
        )
        assert st.st_mtime_ns == 5 * 10**9
        s = sb.stat(b"/file")
        assert (s.mode & 0o7777, s.uid, s.gid, s.size, s.mtime_ns) == (
            0o600,
            12,
            34,
            2,
            5 * 10**9,
        )

    def test_xattrs(self, sb, host):
        sb.vfs.setxattr_at(
            None, sb.creds, sb.pop(b"/file"), SetXattrOptions(b"user.a", b"1")
        )
        assert os.getxattr(f"{host}/file", "user.a") == b"1"
        assert sb.vfs.getxattr_at(None, sb.creds, sb.pop(b"/file"), b"user.a") == b"1"
        assert sb.vfs.listxattr_at(None, sb.creds, sb.pop(b"/file")) == [b"user.a"]
        n = errno_of(sb.vfs.getxattr_at, None, sb.creds, sb.pop(b"/file"), b"user.b")
        assert n == errno.ENODATA

    def test_statfs(self, sb, host):
        s = sb.vfs.statfs_at(None, sb.creds, sb.pop(b"/"))
        assert s.block_size == os.statvfs(host).f_bsize

    def test_get_dentry_search_dir(self, sb):
        vd = sb.vfs.get_dentry_at(
            None, sb.creds, sb.pop(b"/dir"), GetDentryOptions(check_search_dir=True)
        )
        assert vd.dentry.is_dir()
        n = errno_of(
            sb.vfs.get_dentry_at,
            None,
            sb.creds,
            sb.pop(b"/file"),
            GetDentryOptions(check_search_dir=True),
        )
        assert n == errno.ENOTDIR


class TestReadOnly:
    def test_refuses_changes(self, host):
        sb = Sandbox(host, server.Policy(read_only=True))
        try:
            assert errno_of(sb.open, b"/file", F.O_WRONLY) == errno.EROFS
            assert errno_of(sb.open, b"/new", F.O_WRONLY | F.O_CREAT) == errno.EROFS
            assert (
                errno_of(sb.vfs.unlink_at, None, sb.creds, sb.pop(b"/file"))
                == errno.EROFS
            )
            fd = sb.open(b"/file", F.O_RDONLY)
            assert fd.read(None, 10) == b"hello"
            fd.dec_ref()
        finally:
            sb.close()
        assert sorted(os.listdir(host)) == ["abslink", "dir", "file", "link"]


class TestNodeCache:
    """Node ids (descriptors in the gofer) stay bounded; dentries that gave
    theirs back walk again when used."""

    @pytest.fixture
    def wide(self, host) -> str:
        for i in range(50):
            with open(f"{host}/dir/f{i}", "wb") as f:
                f.write(b"%d" % i)
        return host

    def test_bounded_and_rewalked(self, wide):
        sb = Sandbox(wide, max_nodes=8)
        try:
            for i in range(50):
                assert sb.stat(b"/dir/f%d" % i).size == len(b"%d" % i)
            assert len(sb.conn._nodes) <= 8 + 4
            for i in range(50):
                fd = sb.open(b"/dir/f%d" % i, F.O_RDONLY)
                assert fd.read(None, 10) == b"%d" % i
                fd.dec_ref()
            assert len(sb.conn._nodes) <= 8 + 4
            assert len(sb.listdir(b"/dir")) == 52
            assert len(sb.conn._nodes) <= 8 + 4
        finally:
            sb.close()

    def test_renamed_after_eviction(self, wide):
        sb = Sandbox(wide, max_nodes=4)
        try:
            sb.stat(b"/dir/f1")
            sb.vfs.rename_at(
                None, sb.creds, sb.pop(b"/dir/f1"), sb.pop(b"/moved"), RenameOptions()
            )
            for i in range(2, 30):
                sb.stat(b"/dir/f%d" % i)
            fd = sb.open(b"/moved", F.O_RDONLY)
            assert fd.read(None, 10) == b"1"
            fd.dec_ref()
        finally:
            sb.close()

    def test_deleted_open_file_keeps_working(self, wide):
        sb = Sandbox(wide, max_nodes=4)
        try:
            fd = sb.open(b"/dir/f7", F.O_RDWR)
            sb.vfs.unlink_at(None, sb.creds, sb.pop(b"/dir/f7"))
            for i in range(10, 40):
                sb.stat(b"/dir/f%d" % i)
            fd.setstat(
                _FakeTask(sb.creds), SetStatOptions(mask=S.STATX_MODE, mode=0o600)
            )
            assert fd.stat(None, 0).mode & 0o777 == 0o600
            fd.dec_ref()
        finally:
            sb.close()

    def test_changed_behind_our_back_is_estale(self, wide):
        sb = Sandbox(wide, max_nodes=4)
        try:
            sb.stat(b"/dir/f3")
            for i in range(10, 40):
                sb.stat(b"/dir/f%d" % i)
            os.rename(f"{wide}/dir/f3", f"{wide}/dir/f3.old")
            with open(f"{wide}/dir/f3", "wb") as f:
                f.write(b"impostor")
            assert errno_of(sb.open, b"/dir/f3", F.O_RDONLY) == errno.ESTALE
        finally:
            sb.close()

    def test_host_descriptors_closed_with_last_file(self, host):
        sb = Sandbox(host)
        try:
            a = sb.open(b"/file", F.O_RDONLY)
            b = sb.open(b"/file", F.O_RDWR)
            inode = a.dentry.inode
            assert inode.read_fd >= 0 and inode.rw_fd >= 0
            a.dec_ref()
            assert inode.rw_fd >= 0
            b.dec_ref()
            assert (inode.read_fd, inode.rw_fd) == (-1, -1)
        finally:
            sb.close()


class _FakeTask:
    """The parts of a Task that setstat through a file uses."""

    def __init__(self, creds) -> None:
        self.creds = creds


class TestFileCache:
    """A mapped file's page cache is coherent with reads and writes."""

    def test_reads_and_writes_through_cache(self, sb, host):
        fd = sb.open(b"/file", F.O_RDWR)
        try:
            cache = fd.dentry.inode.file_cache()
            assert cache.read(0, 5) == b"hello"
            # Fill a chunk, as a page fault would.
            cache.translate(0, 4096, 4096, False)
            fd.pwrite(None, b"J", 0)
            assert cache.read(0, 5) == b"Jello"
            assert fd.pread(None, 5, 0) == b"Jello"
            with open(f"{host}/file", "rb") as h:
                assert h.read() == b"Jello"
            sb.vfs.setstat_at(
                None,
                sb.creds,
                sb.pop(b"/file"),
                SetStatOptions(mask=S.STATX_SIZE, size=2),
            )
            assert fd.pread(None, 5, 0) == b"Je"
        finally:
            fd.dec_ref()
        assert fd.dentry.inode.cache is None
