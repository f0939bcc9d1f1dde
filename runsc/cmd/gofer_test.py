"""Tests of `runsc gofer` as a real, confined process."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from pkg.gofer.client import Client
from pkg.gofer.proto import gofer_pb2 as pb


def spawn(
    make_args: Callable[[list[int]], list[str]],
    n: int,
    extra_fds: tuple[int, ...] = (),
    global_flags: tuple[str, ...] = ("--overlay2=none",),
) -> tuple[subprocess.Popen, list[Client]]:
    """Starts `runsc gofer` with n connections.

    Args:
        make_args: returns the verb's flags given the gofer-side descriptor
            numbers of the connections.
        n: how many connections.
        extra_fds: more descriptors to pass.
        global_flags: runsc's flags before the verb; by default no overlay,
            so that the gofer serves what the verb's flags say.

    Returns:
        The process and one client per connection.
    """
    pairs = [socket.socketpair() for _ in range(n)]
    theirs = [b.fileno() for _, b in pairs]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    argv = [sys.executable, "-m", "runsc.main", *global_flags, "gofer"]
    argv += make_args(theirs)
    proc = subprocess.Popen(argv, pass_fds=[*theirs, *extra_fds], env=env)
    for _, b in pairs:
        b.close()
    return proc, [Client(a) for a, _ in pairs]


def finish(proc: subprocess.Popen, clients: list[Client]) -> int:
    for c in clients:
        c.close()
    return proc.wait(timeout=30)


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@pytest.fixture
def rootfs(tmp_path) -> str:
    # No Python inside: the gofer must have loaded everything before chroot.
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(b"container passwd")
    (root / "d").mkdir()
    os.symlink("/etc/shadow", root / "abs")
    os.symlink("../../../../etc/passwd", root / "d" / "rel")
    os.symlink(str(tmp_path / "secret"), root / "secretlink")
    (tmp_path / "secret").write_bytes(b"host secret")
    return str(root)


def read_file(c: Client, root: int, path: bytes) -> bytes:
    inode = c.resolve(root, path)
    fd = c.open(inode.node, os.O_RDONLY)
    try:
        return os.read(fd, 1000)
    finally:
        os.close(fd)


class TestConfinedGofer:
    @pytest.fixture
    def gofer(self, rootfs) -> Iterator[tuple[subprocess.Popen, Client, pb.Inode]]:
        proc, clients = spawn(
            lambda fds: [f"--rootfs={rootfs}", f"--io-fd={fds[0]}"], 1
        )
        root = clients[0].mount().root
        yield proc, clients[0], root
        assert finish(proc, clients) == 0

    def test_is_confined(self, gofer, rootfs):
        proc, _, _ = gofer
        s = proc_status(proc.pid)
        assert s["Seccomp"] == "2"
        assert s["NoNewPrivs"] == "1"
        kept = (1 << 5) - 1  # CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID
        assert int(s["CapEff"], 16) == kept
        assert int(s["CapPrm"], 16) == kept
        assert int(s["CapBnd"], 16) == kept
        assert os.readlink(f"/proc/{proc.pid}/root") == rootfs
        with open(f"/proc/{proc.pid}/comm") as f:
            assert f.read().strip() == "runsc-gofer"
        assert os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink(
            "/proc/self/ns/net"
        )

    def test_every_operation_under_seccomp(self, gofer, rootfs):
        # Each request type once, so that a system call missing from the
        # allowlist kills the gofer and fails the test.
        _, c, root = gofer
        r = root.node
        assert read_file(c, r, b"/etc/passwd") == b"container passwd"
        inode, fd = c.create(r, b"f", os.O_RDWR, 0o644, 0, 0)
        os.write(fd, b"abc")
        os.close(fd)
        d = c.mkdir(r, b"dir", 0o755, 0, 0)
        c.mknod(d.node, b"fifo", stat.S_IFIFO | 0o644, 0, 0)
        c.symlink(d.node, b"sl", b"../f", 0, 0)
        c.link(d.node, b"hard", inode.node)
        c.rename(d.node, b"hard", r, b"hard2")
        names = sorted(e.name for e in c.getdents(d.node, 0))
        assert names == [b".", b"..", b"fifo", b"sl"]
        assert c.readlink(c.walk(d.node, [b"sl"])[0][0].node) == b"../f"
        c.setstat(
            pb.SetStatRequest(
                node=inode.node,
                mask=pb.SETSTAT_MODE
                | pb.SETSTAT_SIZE
                | pb.SETSTAT_UID
                | pb.SETSTAT_MTIME,
                mode=0o600,
                size=1,
                uid=5,
                mtime=pb.Timespec(sec=7),
            )
        )
        assert c.stat(inode.node).size == 1
        assert c.statfs(r).name_length > 0
        c.setxattr(inode.node, b"user.x", b"1")
        assert c.getxattr(inode.node, b"user.x") == b"1"
        assert c.listxattr(inode.node) == [b"user.x"]
        c.removexattr(inode.node, b"user.x")
        c.fsync(inode.node)
        c.fsync(d.node, datasync=True)
        c.unlink(d.node, b"fifo")
        c.unlink(d.node, b"sl")
        c.unlink(r, b"dir", 0x200)
        c.close_nodes([inode.node, d.node])
        st = os.lstat(f"{rootfs}/f")
        assert (st.st_size, st.st_uid, stat.S_IMODE(st.st_mode)) == (1, 5, 0o600)
        assert os.path.exists(f"{rootfs}/hard2")
        assert not os.path.exists(f"{rootfs}/dir")

    def test_planted_symlinks_stay_inside(self, gofer):
        _, c, root = gofer
        for path in (b"abs", b"secretlink", b"d/../../../etc/shadow"):
            with pytest.raises(OSError) as e:
                read_file(c, root.node, path)
            assert e.value.errno == errno.ENOENT
        assert read_file(c, root.node, b"d/rel") == b"container passwd"

    def test_refuses_special_files(self, gofer, rootfs):
        _, c, root = gofer
        os.mkfifo(f"{rootfs}/fifo")
        os.mknod(f"{rootfs}/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        for name in (b"fifo", b"null"):
            node = c.walk(root.node, [name])[0][0].node
            with pytest.raises(OSError) as e:
                c.open(node, os.O_RDONLY)
            assert e.value.errno == errno.EPERM
        with pytest.raises(OSError) as e:
            c.mknod(root.node, b"dev", stat.S_IFCHR | 0o600, 0, 0, (1, 3))
        assert e.value.errno == errno.EPERM


def test_several_mounts_and_read_only(tmp_path, rootfs):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_bytes(b"data x")
    proc, (root_c, data_c) = spawn(
        lambda fds: [
            f"--rootfs={rootfs}",
            "--ro",
            f"--io-fd={fds[0]}",
            f"--mount={fds[1]}:{data}",
        ],
        2,
    )
    root = root_c.mount()
    assert root.read_only
    with pytest.raises(OSError) as e:
        root_c.create(root.root.node, b"n", os.O_RDWR, 0o644, 0, 0)
    assert e.value.errno == errno.EROFS
    # The bind mount's source is outside the chroot; its descriptor was
    # opened before.
    m = data_c.mount()
    assert not m.read_only
    assert read_file(data_c, m.root.node, b"x") == b"data x"
    _, fd = data_c.create(m.root.node, b"new", os.O_WRONLY, 0o644, 0, 0)
    os.close(fd)
    assert (data / "new").exists()
    assert finish(proc, [root_c, data_c]) == 0


def test_spec_fd(tmp_path, rootfs):
    data = tmp_path / "data"
    data.mkdir()
    (data / "y").write_bytes(b"yyy")
    spec = {
        "root": {"path": rootfs, "readonly": False},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/data",
                "type": "bind",
                "source": str(data),
                "options": ["rbind", "ro"],
            },
        ],
    }
    r, w = os.pipe()
    os.write(w, json.dumps(spec).encode())
    os.close(w)
    proc, (root_c, data_c) = spawn(
        lambda fds: [
            f"--spec-fd={r}",
            f"--bundle={tmp_path}",
            f"--io-fds={fds[0]},{fds[1]}",
        ],
        2,
        (r,),
    )
    os.close(r)
    assert not root_c.mount().read_only
    m = data_c.mount()
    assert m.read_only
    assert read_file(data_c, m.root.node, b"y") == b"yyy"
    assert finish(proc, [root_c, data_c]) == 0


def test_bad_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runsc.main",
            "gofer",
            "--rootfs=/nonexistent",
            "--io-fd=0",
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 1
    assert b"nonexistent" in proc.stderr


def test_overlay_makes_mounts_read_only(tmp_path, rootfs):
    data = tmp_path / "data"
    data.mkdir()
    proc, (root_c, data_c) = spawn(
        lambda fds: [
            f"--rootfs={rootfs}",
            f"--io-fd={fds[0]}",
            f"--mount={fds[1]}:{data}",
        ],
        2,
        global_flags=("--overlay2=root:memory",),
    )
    assert root_c.mount().read_only
    assert not data_c.mount().read_only
    assert finish(proc, [root_c, data_c]) == 0
    proc, (root_c, data_c) = spawn(
        lambda fds: [
            f"--rootfs={rootfs}",
            f"--io-fd={fds[0]}",
            f"--mount={fds[1]}:{data}",
        ],
        2,
        global_flags=("--overlay2=all:memory",),
    )
    assert root_c.mount().read_only
    assert data_c.mount().read_only
    assert finish(proc, [root_c, data_c]) == 0
