"""Tests of building the container's root and bind mounts from gofer
connections."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.gofer import server
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.options import OpenOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem
from runsc.boot import rootfs


class Gofers:
    """Gofer connections served on threads of the test process."""

    def __init__(self) -> None:
        self.proc_fd = server.open_proc_fd()
        self.threads: list[threading.Thread] = []

    def serve(self, path: str, read_only: bool) -> socket.socket:
        ours, theirs = socket.socketpair()
        root_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        conn = server.Connection(
            theirs, root_fd, server.Policy(read_only=read_only), self.proc_fd
        )
        t = threading.Thread(target=conn.serve, daemon=True)
        t.start()
        self.threads.append(t)
        return ours


@pytest.fixture
def gofers():
    g = Gofers()
    yield g
    os.close(g.proc_fd)


def new_vfs() -> VirtualFilesystem:
    vfs = VirtualFilesystem()
    mf = MemoryFile(size=16 << 20)
    vfs.register_filesystem_type("tmpfs", TmpfsType(mf))
    rootfs.register_filesystems(vfs, mf)
    return vfs


def write(vfs, root: VirtualDentry, path: bytes, data: bytes) -> None:
    pop = PathOperation(root=root, start=root, path=path)
    fd = vfs.open_at(
        None,
        root_credentials(),
        pop,
        OpenOptions(F.O_WRONLY | F.O_CREAT | F.O_TRUNC, 0o644),
    )
    try:
        fd.write(None, data)
    finally:
        fd.dec_ref()


def read(vfs, root: VirtualDentry, path: bytes) -> bytes:
    pop = PathOperation(root=root, start=root, path=path)
    fd = vfs.open_at(None, root_credentials(), pop, OpenOptions(F.O_RDONLY))
    try:
        return fd.read(None, 1000)
    finally:
        fd.dec_ref()


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "motd").write_bytes(b"hi")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d").write_bytes(b"data")
    (tmp_path / "one").write_bytes(b"one file")
    return tmp_path


def test_parse_overlay2():
    assert rootfs.parse_overlay2("none") == (False, False)
    assert rootfs.parse_overlay2("root:memory") == (True, False)
    assert rootfs.parse_overlay2("all:memory") == (True, True)
    assert rootfs.parse_overlay2("root:self") == (True, False)
    with pytest.raises(ValueError):
        rootfs.parse_overlay2("sometimes")


def test_overlay_root_keeps_host_untouched(gofers, tree):
    vfs = new_vfs()
    ns = rootfs.new_root_namespace(vfs, gofers.serve(str(tree / "root"), True), True)
    root = VirtualDentry(ns.root, ns.root.root)
    assert read(vfs, root, b"/etc/motd") == b"hi"
    write(vfs, root, b"/etc/motd", b"changed")
    write(vfs, root, b"/new", b"new")
    assert read(vfs, root, b"/etc/motd") == b"changed"
    assert (tree / "root" / "etc" / "motd").read_bytes() == b"hi"
    assert sorted(os.listdir(tree / "root")) == ["etc"]


def test_plain_root_writes_through(gofers, tree):
    vfs = new_vfs()
    ns = rootfs.new_root_namespace(vfs, gofers.serve(str(tree / "root"), False), False)
    root = VirtualDentry(ns.root, ns.root.root)
    write(vfs, root, b"/etc/motd", b"changed")
    assert (tree / "root" / "etc" / "motd").read_bytes() == b"changed"


def test_submounts(gofers, tree):
    vfs = new_vfs()
    ns = rootfs.new_root_namespace(vfs, gofers.serve(str(tree / "root"), True), True)
    mounts = [
        {"destination": "/mnt/data", "source": str(tree / "data"), "type": "bind"},
        {
            "destination": "/ro",
            "source": str(tree / "data"),
            "options": ["rbind", "ro"],
        },
        {"destination": "/etc/one", "source": str(tree / "one"), "type": "bind"},
    ]
    conns = [
        gofers.serve(str(tree / "data"), False),
        gofers.serve(str(tree / "data"), True),
        gofers.serve(str(tree / "one"), False),
    ]
    rootfs.mount_submounts(vfs, ns, mounts, conns, overlay=False)
    root = VirtualDentry(ns.root, ns.root.root)
    assert read(vfs, root, b"/mnt/data/d") == b"data"
    write(vfs, root, b"/mnt/data/w", b"written")
    assert (tree / "data" / "w").read_bytes() == b"written"
    with pytest.raises(SyscallError) as e:
        write(vfs, root, b"/ro/x", b"x")
    assert e.value.errno == errno.EROFS
    assert read(vfs, root, b"/etc/one") == b"one file"
    # The mount points were made in the overlay, not on the host.
    assert sorted(os.listdir(tree / "root")) == ["etc"]
    assert sorted(os.listdir(tree / "root" / "etc")) == ["motd"]


def test_submounts_under_overlay(gofers, tree):
    vfs = new_vfs()
    ns = rootfs.new_root_namespace(vfs, gofers.serve(str(tree / "root"), True), True)
    mounts = [{"destination": "/data", "source": str(tree / "data"), "type": "bind"}]
    rootfs.mount_submounts(
        vfs, ns, mounts, [gofers.serve(str(tree / "data"), True)], overlay=True
    )
    root = VirtualDentry(ns.root, ns.root.root)
    write(vfs, root, b"/data/d", b"in memory")
    assert read(vfs, root, b"/data/d") == b"in memory"
    assert (tree / "data" / "d").read_bytes() == b"data"
