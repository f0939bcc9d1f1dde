"""Tests of the gofer server through the client library over a socketpair."""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from collections.abc import Iterator

import pytest

from pkg.gofer import server, wire
from pkg.gofer.client import Client
from pkg.gofer.proto import gofer_pb2 as pb
from pkg.gofer.testutil import LocalGofer


@pytest.fixture
def tree(tmp_path) -> str:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_bytes(b"hello")
    (root / "dir").mkdir()
    (root / "dir" / "inner").write_bytes(b"inner")
    (root / "dir" / "sub").mkdir()
    os.symlink("dir/inner", root / "link")
    os.mkfifo(root / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    s.close()
    return str(root)


@pytest.fixture
def gofer(tree) -> Iterator[LocalGofer]:
    g = LocalGofer(tree)
    yield g
    g.close()


def walk1(g: LocalGofer, *names: bytes) -> pb.Inode:
    inodes, stop = g.client.walk(g.root.node, list(names))
    assert stop == 0
    assert len(inodes) == len(names)
    return inodes[-1]


def errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


class TestMountWalkStat:
    def test_mount_root(self, gofer, tree):
        assert stat.S_ISDIR(gofer.root.stat.mode)
        assert gofer.root.stat.ino == os.stat(tree).st_ino
        assert gofer.root.stat.dev == os.stat(tree).st_dev

    def test_walk_several(self, gofer, tree):
        inodes, stop = gofer.client.walk(gofer.root.node, [b"dir", b"sub"])
        assert stop == 0
        assert [i.stat.ino for i in inodes] == [
            os.stat(f"{tree}/dir").st_ino,
            os.stat(f"{tree}/dir/sub").st_ino,
        ]
        assert len({i.node for i in inodes} | {gofer.root.node}) == 3

    def test_walk_stops_missing(self, gofer):
        inodes, stop = gofer.client.walk(gofer.root.node, [b"dir", b"nope", b"x"])
        assert len(inodes) == 1
        assert stop == errno.ENOENT

    def test_walk_through_file_is_enotdir(self, gofer):
        inodes, stop = gofer.client.walk(gofer.root.node, [b"file", b"x"])
        assert len(inodes) == 1
        assert stop == errno.ENOTDIR

    def test_walk_stops_at_symlink(self, gofer):
        inodes, stop = gofer.client.walk(gofer.root.node, [b"link", b"x", b"y"])
        assert stop == 0
        assert len(inodes) == 1
        assert stat.S_ISLNK(inodes[0].stat.mode)

    def test_walk_final_symlink_not_followed(self, gofer):
        link = walk1(gofer, b"link")
        assert stat.S_ISLNK(link.stat.mode)
        assert gofer.client.readlink(link.node) == b"dir/inner"

    @pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"/", b"a\0b"])
    def test_walk_bad_names(self, gofer, name):
        assert errno_of(gofer.client.walk, gofer.root.node, [name]) == errno.EINVAL

    def test_walk_long_name(self, gofer):
        n = errno_of(gofer.client.walk, gofer.root.node, [b"x" * 256])
        assert n == errno.ENAMETOOLONG

    def test_stat_follows_changes(self, gofer, tree):
        f = walk1(gofer, b"file")
        assert f.stat.size == 5
        with open(f"{tree}/file", "ab") as h:
            h.write(b"!!")
        assert gofer.client.stat(f.node).size == 7

    def test_unknown_node(self, gofer):
        assert errno_of(gofer.client.stat, 12345) == errno.EBADF

    def test_close_releases(self, gofer):
        f = walk1(gofer, b"file")
        gofer.client.close_nodes([f.node])
        assert errno_of(gofer.client.stat, f.node) == errno.EBADF
        # Closing again is harmless.
        gofer.client.close_nodes([f.node])

    def test_ids_not_reused(self, gofer):
        a = walk1(gofer, b"file")
        gofer.client.close_nodes([a.node])
        b = walk1(gofer, b"file")
        assert b.node != a.node


class TestOpen:
    def test_read_write_through_donated_fd(self, gofer, tree):
        f = walk1(gofer, b"file")
        fd = gofer.client.open(f.node, os.O_RDWR)
        try:
            assert os.pread(fd, 100, 0) == b"hello"
            os.pwrite(fd, b"J", 0)
        finally:
            os.close(fd)
        with open(f"{tree}/file", "rb") as h:
            assert h.read() == b"Jello"

    def test_read_only_descriptor(self, gofer):
        fd = gofer.client.open(walk1(gofer, b"file").node, os.O_RDONLY)
        try:
            assert errno_of(os.write, fd, b"x") == errno.EBADF
        finally:
            os.close(fd)

    def test_truncate(self, gofer, tree):
        fd = gofer.client.open(walk1(gofer, b"file").node, os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        assert os.path.getsize(f"{tree}/file") == 0

    def test_ignored_flags(self, gofer):
        # O_CREAT, O_APPEND and the like are the client's business.
        node = walk1(gofer, b"file").node
        fd = gofer.client.open(node, os.O_RDONLY | os.O_APPEND | os.O_CREAT)
        try:
            assert os.get_blocking(fd)
            assert not os.get_inheritable(fd)
        finally:
            os.close(fd)

    def test_bad_access_mode(self, gofer):
        node = walk1(gofer, b"file").node
        assert errno_of(gofer.client.open, node, os.O_ACCMODE) == errno.EINVAL

    @pytest.mark.parametrize(
        ("name", "code"),
        [
            (b"dir", errno.EISDIR),
            (b"link", errno.ELOOP),
            (b"fifo", errno.EPERM),
            (b"sock", errno.ENXIO),
        ],
    )
    def test_refused_types(self, gofer, name, code):
        node = walk1(gofer, name).node
        assert errno_of(gofer.client.open, node, os.O_RDONLY) == code

    def test_device_refused(self, gofer, tree):
        os.mknod(f"{tree}/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        node = walk1(gofer, b"null").node
        assert errno_of(gofer.client.open, node, os.O_RDWR) == errno.EPERM

    def test_fifo_and_device_allowed_by_policy(self, tree):
        os.mknod(f"{tree}/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        g = LocalGofer(tree, server.Policy(host_fifo=True, host_devices=True))
        try:
            fd = g.client.open(walk1(g, b"fifo").node, os.O_RDONLY)
            assert stat.S_ISFIFO(os.fstat(fd).st_mode)
            assert not os.get_blocking(fd)
            os.close(fd)
            fd = g.client.open(walk1(g, b"null").node, os.O_RDWR)
            assert os.write(fd, b"x") == 1
            os.close(fd)
        finally:
            g.close()

    def test_open_follows_renames(self, gofer, tree):
        # The node is the inode, not the path.
        f = walk1(gofer, b"file")
        os.rename(f"{tree}/file", f"{tree}/moved")
        with open(f"{tree}/file", "wb") as h:
            h.write(b"impostor")
        fd = gofer.client.open(f.node, os.O_RDONLY)
        try:
            assert os.read(fd, 100) == b"hello"
        finally:
            os.close(fd)


class TestCreate:
    def test_create(self, gofer, tree):
        inode, fd = gofer.client.create(
            gofer.root.node, b"new", os.O_RDWR, 0o640, 1234, 5678
        )
        try:
            os.write(fd, b"data")
        finally:
            os.close(fd)
        st = os.lstat(f"{tree}/new")
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert (inode.stat.uid, inode.stat.gid, inode.stat.ino) == (
            1234,
            5678,
            st.st_ino,
        )
        with open(f"{tree}/new", "rb") as h:
            assert h.read() == b"data"

    def test_create_exists(self, gofer):
        n = errno_of(
            gofer.client.create, gofer.root.node, b"file", os.O_RDWR, 0o644, 0, 0
        )
        assert n == errno.EEXIST

    def test_create_over_symlink_is_eexist(self, gofer, tree):
        os.symlink("/nonexistent-target", f"{tree}/dangling")
        n = errno_of(
            gofer.client.create, gofer.root.node, b"dangling", os.O_RDWR, 0o644, 0, 0
        )
        assert n == errno.EEXIST
        assert not os.path.exists("/nonexistent-target")

    def test_create_in_non_directory(self, gofer):
        f = walk1(gofer, b"file").node
        n = errno_of(gofer.client.create, f, b"x", os.O_RDWR, 0o644, 0, 0)
        assert n == errno.ENOTDIR

    def test_setuid_bits_survive_chown(self, gofer, tree):
        _, fd = gofer.client.create(gofer.root.node, b"suid", os.O_RDONLY, 0o4755, 7, 7)
        os.close(fd)
        assert stat.S_IMODE(os.lstat(f"{tree}/suid").st_mode) == 0o4755

    def test_mkdir(self, gofer, tree):
        d = gofer.client.mkdir(gofer.root.node, b"newdir", 0o710, 11, 22)
        st = os.lstat(f"{tree}/newdir")
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o710
        assert (st.st_uid, st.st_gid) == (11, 22)
        assert d.stat.ino == st.st_ino
        _, fd = gofer.client.create(d.node, b"f", os.O_WRONLY, 0o600, 0, 0)
        os.close(fd)
        assert os.path.exists(f"{tree}/newdir/f")

    def test_mkdir_exists(self, gofer):
        n = errno_of(gofer.client.mkdir, gofer.root.node, b"dir", 0o755, 0, 0)
        assert n == errno.EEXIST

    def test_mknod_fifo_and_regular(self, gofer, tree):
        gofer.client.mknod(gofer.root.node, b"p", stat.S_IFIFO | 0o600, 0, 0)
        gofer.client.mknod(gofer.root.node, b"r", 0o600, 0, 0)
        gofer.client.mknod(gofer.root.node, b"s", stat.S_IFSOCK | 0o600, 0, 0)
        assert stat.S_ISFIFO(os.lstat(f"{tree}/p").st_mode)
        assert stat.S_ISREG(os.lstat(f"{tree}/r").st_mode)
        assert stat.S_ISSOCK(os.lstat(f"{tree}/s").st_mode)

    def test_mknod_device_refused(self, gofer, tree):
        n = errno_of(
            gofer.client.mknod,
            gofer.root.node,
            b"sda",
            stat.S_IFBLK | 0o600,
            0,
            0,
            (8, 0),
        )
        assert n == errno.EPERM
        assert not os.path.lexists(f"{tree}/sda")

    def test_mknod_bad_type(self, gofer):
        n = errno_of(
            gofer.client.mknod, gofer.root.node, b"d", stat.S_IFDIR | 0o755, 0, 0
        )
        assert n == errno.EINVAL

    def test_symlink(self, gofer, tree):
        s = gofer.client.symlink(gofer.root.node, b"sl", b"/etc/passwd", 3, 4)
        assert os.readlink(f"{tree}/sl") == "/etc/passwd"
        st = os.lstat(f"{tree}/sl")
        assert (st.st_uid, st.st_gid) == (3, 4)
        assert stat.S_ISLNK(s.stat.mode)

    def test_symlink_empty_target(self, gofer):
        n = errno_of(gofer.client.symlink, gofer.root.node, b"sl", b"", 0, 0)
        assert n == errno.ENOENT

    def test_link(self, gofer, tree):
        f = walk1(gofer, b"file")
        d = walk1(gofer, b"dir")
        new = gofer.client.link(d.node, b"hard", f.node)
        assert new.stat.ino == f.stat.ino
        assert new.stat.nlink == 2
        assert os.stat(f"{tree}/dir/hard").st_ino == f.stat.ino

    def test_link_to_symlink_links_the_symlink(self, gofer, tree):
        link = walk1(gofer, b"link")
        gofer.client.link(gofer.root.node, b"link2", link.node)
        assert os.readlink(f"{tree}/link2") == "dir/inner"

    def test_link_directory_refused(self, gofer):
        d = walk1(gofer, b"dir")
        assert (
            errno_of(gofer.client.link, gofer.root.node, b"d2", d.node) == errno.EPERM
        )


class TestRemoveRename:
    def test_unlink(self, gofer, tree):
        gofer.client.unlink(gofer.root.node, b"file")
        assert not os.path.exists(f"{tree}/file")

    def test_unlink_missing(self, gofer):
        assert errno_of(gofer.client.unlink, gofer.root.node, b"zz") == errno.ENOENT

    def test_unlink_dir_is_eisdir(self, gofer):
        n = errno_of(gofer.client.unlink, gofer.root.node, b"dir")
        assert n in (errno.EISDIR, errno.EPERM)

    def test_rmdir(self, gofer, tree):
        d = walk1(gofer, b"dir")
        assert (
            errno_of(gofer.client.unlink, gofer.root.node, b"dir", 0x200)
            == errno.ENOTEMPTY
        )
        gofer.client.unlink(d.node, b"inner")
        gofer.client.unlink(d.node, b"sub", 0x200)
        gofer.client.unlink(gofer.root.node, b"dir", 0x200)
        assert not os.path.exists(f"{tree}/dir")

    def test_unlink_bad_flags(self, gofer):
        assert (
            errno_of(gofer.client.unlink, gofer.root.node, b"file", 1) == errno.EINVAL
        )

    def test_rename(self, gofer, tree):
        d = walk1(gofer, b"dir")
        gofer.client.rename(gofer.root.node, b"file", d.node, b"renamed")
        with open(f"{tree}/dir/renamed", "rb") as h:
            assert h.read() == b"hello"

    def test_rename_noreplace(self, gofer, tree):
        d = walk1(gofer, b"dir")
        n = errno_of(gofer.client.rename, gofer.root.node, b"file", d.node, b"inner", 1)
        assert n == errno.EEXIST

    def test_rename_exchange(self, gofer, tree):
        d = walk1(gofer, b"dir")
        gofer.client.rename(gofer.root.node, b"file", d.node, b"inner", 2)
        with open(f"{tree}/file", "rb") as h:
            assert h.read() == b"inner"
        with open(f"{tree}/dir/inner", "rb") as h:
            assert h.read() == b"hello"

    def test_rename_whiteout_refused(self, gofer):
        d = walk1(gofer, b"dir")
        n = errno_of(gofer.client.rename, gofer.root.node, b"file", d.node, b"x", 4)
        assert n == errno.EINVAL

    def test_readlink_non_symlink(self, gofer):
        assert errno_of(gofer.client.readlink, gofer.root.node) == errno.EINVAL


class TestGetdents:
    def test_lists_everything(self, gofer, tree):
        ents = gofer.client.getdents(gofer.root.node, 0)
        names = {e.name: e for e in ents}
        assert set(names) == {b".", b"..", b"file", b"dir", b"link", b"fifo", b"sock"}
        assert names[b"file"].ino == os.lstat(f"{tree}/file").st_ino
        assert names[b"dir"].type == 4  # DT_DIR
        assert names[b"link"].type == 10  # DT_LNK
        assert gofer.client.getdents(gofer.root.node, ents[-1].next_offset) == []

    def test_resume_from_cookie(self, gofer, tree):
        for i in range(500):
            open(f"{tree}/dir/sub/{'f' * 100}{i}", "w").close()
        sub = walk1(gofer, b"dir", b"sub")
        seen = []
        offset = 0
        while True:
            ents = gofer.client.getdents(sub.node, offset, 4096)
            if not ents:
                break
            assert len(ents) < 500
            seen.extend(e.name for e in ents)
            offset = ents[-1].next_offset
        assert len(seen) == 502
        assert len(set(seen)) == 502

    def test_not_a_directory(self, gofer):
        f = walk1(gofer, b"file")
        assert errno_of(gofer.client.getdents, f.node, 0) == errno.ENOTDIR


class TestSetStat:
    def test_mode_size_owner_times(self, gofer, tree):
        f = walk1(gofer, b"file")
        mask = (
            pb.SETSTAT_MODE
            | pb.SETSTAT_SIZE
            | pb.SETSTAT_UID
            | pb.SETSTAT_GID
            | pb.SETSTAT_ATIME
            | pb.SETSTAT_MTIME
        )
        st = gofer.client.setstat(
            pb.SetStatRequest(
                node=f.node,
                mask=mask,
                mode=0o600,
                size=2,
                uid=77,
                gid=88,
                atime=pb.Timespec(sec=1000, nsec=5),
                mtime=pb.Timespec(sec=2000, nsec=6),
            )
        )
        host = os.lstat(f"{tree}/file")
        assert stat.S_IMODE(host.st_mode) == 0o600
        assert host.st_size == 2
        assert (host.st_uid, host.st_gid) == (77, 88)
        assert host.st_atime_ns == 1000 * 10**9 + 5
        assert host.st_mtime_ns == 2000 * 10**9 + 6
        assert (st.size, st.uid, st.mtime.sec) == (2, 77, 2000)

    def test_times_now_and_omit(self, gofer, tree):
        os.utime(f"{tree}/file", ns=(10**9, 10**9))
        f = walk1(gofer, b"file")
        gofer.client.setstat(
            pb.SetStatRequest(node=f.node, mask=pb.SETSTAT_MTIME | pb.SETSTAT_MTIME_NOW)
        )
        host = os.lstat(f"{tree}/file")
        assert host.st_atime_ns == 10**9
        assert host.st_mtime_ns > 10**18

    def test_symlink_times_not_followed(self, gofer, tree):
        before = os.stat(f"{tree}/dir/inner").st_mtime_ns
        link = walk1(gofer, b"link")
        gofer.client.setstat(
            pb.SetStatRequest(
                node=link.node, mask=pb.SETSTAT_MTIME, mtime=pb.Timespec(sec=5)
            )
        )
        assert os.lstat(f"{tree}/link").st_mtime_ns == 5 * 10**9
        assert os.stat(f"{tree}/dir/inner").st_mtime_ns == before

    def test_symlink_mode_unsupported(self, gofer):
        link = walk1(gofer, b"link")
        req = pb.SetStatRequest(node=link.node, mask=pb.SETSTAT_MODE, mode=0o600)
        assert errno_of(gofer.client.setstat, req) == errno.EOPNOTSUPP

    def test_size_of_directory(self, gofer):
        d = walk1(gofer, b"dir")
        req = pb.SetStatRequest(node=d.node, mask=pb.SETSTAT_SIZE, size=0)
        assert errno_of(gofer.client.setstat, req) == errno.EISDIR

    def test_bad_nsec(self, gofer):
        f = walk1(gofer, b"file")
        req = pb.SetStatRequest(
            node=f.node, mask=pb.SETSTAT_ATIME, atime=pb.Timespec(sec=0, nsec=10**9)
        )
        assert errno_of(gofer.client.setstat, req) == errno.EINVAL

    def test_statfs(self, gofer, tree):
        s = gofer.client.statfs(gofer.root.node)
        host = os.statvfs(tree)
        assert s.block_size == host.f_bsize
        assert s.name_length == host.f_namemax
        assert s.type != 0

    def test_fsync(self, gofer):
        gofer.client.fsync(walk1(gofer, b"file").node)
        gofer.client.fsync(walk1(gofer, b"dir").node, datasync=True)
        assert errno_of(gofer.client.fsync, walk1(gofer, b"link").node) == errno.EINVAL


class TestXattr:
    def test_round_trip(self, gofer, tree):
        f = walk1(gofer, b"file").node
        gofer.client.setxattr(f, b"user.k", b"v")
        assert os.getxattr(f"{tree}/file", "user.k") == b"v"
        assert gofer.client.getxattr(f, b"user.k") == b"v"
        assert gofer.client.listxattr(f) == [b"user.k"]
        n = errno_of(gofer.client.setxattr, f, b"user.k", b"w", os.XATTR_CREATE)
        assert n == errno.EEXIST
        gofer.client.removexattr(f, b"user.k")
        assert errno_of(gofer.client.getxattr, f, b"user.k") == errno.ENODATA

    def test_other_namespaces_refused(self, gofer):
        f = walk1(gofer, b"file").node
        for name in (b"trusted.x", b"security.x", b"system.posix_acl_access"):
            assert errno_of(gofer.client.setxattr, f, name, b"v") == errno.EOPNOTSUPP
            assert errno_of(gofer.client.getxattr, f, name) == errno.EOPNOTSUPP

    def test_directory(self, gofer):
        d = walk1(gofer, b"dir").node
        gofer.client.setxattr(d, b"user.d", b"1")
        assert gofer.client.getxattr(d, b"user.d") == b"1"

    def test_symlink_has_none(self, gofer):
        link = walk1(gofer, b"link").node
        assert gofer.client.listxattr(link) == []
        assert errno_of(gofer.client.getxattr, link, b"user.k") == errno.ENODATA
        assert errno_of(gofer.client.setxattr, link, b"user.k", b"v") == errno.EPERM


class TestReadOnly:
    @pytest.fixture
    def ro(self, tree) -> Iterator[LocalGofer]:
        g = LocalGofer(tree, server.Policy(read_only=True))
        yield g
        g.close()

    def test_reads_work(self, ro):
        assert ro.client.getdents(ro.root.node, 0)
        fd = ro.client.open(walk1(ro, b"file").node, os.O_RDONLY)
        assert os.read(fd, 10) == b"hello"
        os.close(fd)

    def test_changes_refused(self, ro, tree):
        root = ro.root.node
        f = walk1(ro, b"file").node
        calls = [
            (ro.client.open, f, os.O_WRONLY),
            (ro.client.open, f, os.O_RDONLY | os.O_TRUNC),
            (ro.client.create, root, b"n", os.O_RDWR, 0o644, 0, 0),
            (ro.client.mkdir, root, b"n", 0o755, 0, 0),
            (ro.client.mknod, root, b"n", 0o644, 0, 0),
            (ro.client.symlink, root, b"n", b"t", 0, 0),
            (ro.client.link, root, b"n", f),
            (ro.client.unlink, root, b"file"),
            (ro.client.rename, root, b"file", root, b"n"),
            (ro.client.setstat, pb.SetStatRequest(node=f, mask=pb.SETSTAT_MODE)),
            (ro.client.setxattr, f, b"user.a", b"b"),
            (ro.client.removexattr, f, b"user.a"),
        ]
        for fn, *args in calls:
            assert errno_of(fn, *args) == errno.EROFS, fn.__name__
        assert sorted(os.listdir(tree)) == ["dir", "fifo", "file", "link", "sock"]
        with open(f"{tree}/file", "rb") as h:
            assert h.read() == b"hello"


class TestContainment:
    """A tree that points outside itself cannot be used to leave it."""

    @pytest.fixture
    def planted(self, tmp_path, tree) -> str:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret").write_bytes(b"host secret")
        os.symlink(str(outside), f"{tree}/abs")
        os.symlink("../outside", f"{tree}/rel")
        os.symlink("../../../../../../../../" + str(outside), f"{tree}/dir/deep")
        return str(outside)

    def test_walk_never_follows(self, gofer, planted):
        for path in (
            [b"abs", b"secret"],
            [b"rel", b"secret"],
            [b"dir", b"deep", b"secret"],
        ):
            inodes, stop = gofer.client.walk(gofer.root.node, path)
            assert stop == 0
            assert stat.S_ISLNK(inodes[-1].stat.mode)
            assert len(inodes) < len(path)

    def test_symlink_node_cannot_be_opened_or_listed(self, gofer, planted):
        link = walk1(gofer, b"abs").node
        assert errno_of(gofer.client.open, link, os.O_RDONLY) == errno.ELOOP
        assert errno_of(gofer.client.getdents, link, 0) == errno.ENOTDIR
        inodes, stop = gofer.client.walk(link, [b"secret"])
        assert (inodes, stop) == ([], errno.ENOTDIR)
        n = errno_of(gofer.client.create, link, b"x", os.O_RDWR, 0o644, 0, 0)
        assert n == errno.ENOTDIR
        assert os.listdir(planted) == ["secret"]

    def test_dotdot_refused(self, gofer):
        d = walk1(gofer, b"dir").node
        for node in (gofer.root.node, d):
            assert errno_of(gofer.client.walk, node, [b".."]) == errno.EINVAL
            n = errno_of(gofer.client.rename, node, b"..", node, b"x")
            assert n == errno.EINVAL

    def test_directory_swapped_for_symlink(self, gofer, tree, planted):
        # A node keeps naming the directory it was walked to, even when the
        # host replaces that path with a symlink to the outside afterwards.
        d = walk1(gofer, b"dir").node
        os.rename(f"{tree}/dir", f"{tree}/dir.old")
        os.symlink(planted, f"{tree}/dir")
        _, fd = gofer.client.create(d, b"secret2", os.O_WRONLY, 0o644, 0, 0)
        os.close(fd)
        assert os.path.exists(f"{tree}/dir.old/secret2")
        assert os.listdir(planted) == ["secret"]
        names = {e.name for e in gofer.client.getdents(d, 0)}
        assert b"inner" in names
        assert b"secret" not in names

    def test_link_of_symlink_does_not_reach_target(self, gofer, tree, planted):
        link = walk1(gofer, b"abs").node
        gofer.client.link(gofer.root.node, b"abs2", link)
        assert os.path.islink(f"{tree}/abs2")


class TestProtocol:
    def test_garbage_drops_connection(self, tree):
        a, b = socket.socketpair()
        proc_fd = server.open_proc_fd()
        root_fd = os.open(tree, os.O_PATH)
        conn = server.Connection(b, root_fd, server.Policy(), proc_fd)
        wire.send_frame(a, b"\xff\xff\xff")
        a.shutdown(socket.SHUT_WR)
        conn.serve()
        assert a.recv(10) == b""
        os.close(proc_fd)
        a.close()

    def test_descriptors_in_requests_are_closed(self, tree):
        a, b = socket.socketpair()
        proc_fd = server.open_proc_fd()
        root_fd = os.open(tree, os.O_PATH)
        conn = server.Connection(b, root_fd, server.Policy(), proc_fd)
        r, w = os.pipe()
        req = pb.Request(mount=pb.MountRequest()).SerializeToString()
        wire.send_frame(a, req, [w])
        os.close(w)
        a.shutdown(socket.SHUT_WR)
        conn.serve()
        # The only write end was the server's copy, now closed: EOF.
        assert os.read(r, 1) == b""
        os.close(r)
        os.close(proc_fd)
        a.close()

    def test_oversized_frame(self, tree):
        a, b = socket.socketpair()
        a.sendall(struct.pack("<I", wire.MAX_MESSAGE_SIZE + 1))
        with pytest.raises(wire.ProtocolError):
            wire.recv_frame(b)
        a.close()
        b.close()

    def test_dead_server_is_eio(self, tree):
        a, b = socket.socketpair()
        c = Client(a)
        b.close()
        assert errno_of(c.stat, 1) == errno.EIO
        assert errno_of(c.stat, 1) == errno.EIO
        c.close()


class TestGetdentsWalk:
    def test_entries_come_with_nodes(self, gofer, tree):
        ents = gofer.client.getdents(gofer.root.node, 0, walk=True)
        by_name = {e.name: e for e in ents}
        assert not by_name[b"."].HasField("inode")
        assert not by_name[b".."].HasField("inode")
        f = by_name[b"file"].inode
        assert f.stat.ino == os.lstat(f"{tree}/file").st_ino
        fd = gofer.client.open(f.node, os.O_RDONLY)
        assert os.read(fd, 10) == b"hello"
        os.close(fd)
        link = by_name[b"link"].inode
        assert stat.S_ISLNK(link.stat.mode)
        assert gofer.client.readlink(link.node) == b"dir/inner"


class TestKernelInterfacesSealed:
    """The host's /proc and /sys inside a served tree show nothing."""

    @pytest.fixture
    def host_root(self) -> Iterator[LocalGofer]:
        g = LocalGofer("/", server.Policy(read_only=True))
        yield g
        g.close()

    def test_mount_points_visible_contents_hidden(self, host_root):
        g = host_root
        for top in (b"proc", b"sys"):
            inode = walk1(g, top)
            assert stat.S_ISDIR(inode.stat.mode)
            assert g.client.getdents(inode.node, 0) == []
            inodes, stop = g.client.walk(inode.node, [b"self"])
            assert (inodes, stop) == ([], errno.ENOENT)
            assert errno_of(g.client.listxattr, inode.node) == errno.EACCES
        inodes, stop = g.client.walk(g.root.node, [b"proc", b"self", b"environ"])
        assert len(inodes) == 1 and stop == errno.ENOENT
        ents = g.client.getdents(g.root.node, 0, walk=True)
        proc = next(e for e in ents if e.name == b"proc")
        assert g.client.getdents(proc.inode.node, 0) == []

    def test_ordinary_files_still_served(self, host_root):
        g = host_root
        inode = g.client.resolve(g.root.node, b"/etc/hostname")
        fd = g.client.open(inode.node, os.O_RDONLY)
        with open("/etc/hostname", "rb") as f:
            assert os.read(fd, 100) == f.read()
        os.close(fd)
