"""Tests of starting a gofer process."""

from __future__ import annotations

import os

from pkg.gofer.client import Client
from runsc.config import Config
from runsc.sandbox import gofer as launch


def test_start_serves_root_and_mounts(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(b"root file")
    data = tmp_path / "data"
    data.mkdir()
    (data / "g").write_bytes(b"data file")
    proc, socks = launch.start(
        Config(root=str(tmp_path / "state")),
        str(root),
        read_only=True,
        mounts=(launch.GoferMount(str(data)),),
    )
    clients = [Client(s) for s in socks]
    try:
        m = clients[0].mount()
        assert m.read_only
        inode = clients[0].resolve(m.root.node, b"f")
        fd = clients[0].open(inode.node, os.O_RDONLY)
        assert os.read(fd, 100) == b"root file"
        os.close(fd)
        m2 = clients[1].mount()
        assert not m2.read_only
        assert clients[1].walk(m2.root.node, [b"g"])[1] == 0
    finally:
        for c in clients:
            c.close()
    assert proc.wait(timeout=30) == 0


def test_start_for_spec(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "f").write_bytes(b"in root")
    data = tmp_path / "data"
    data.mkdir()
    spec = {
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": str(data)},
        ],
    }
    proc, socks = launch.start_for_spec(
        Config(root=str(tmp_path / "state"), overlay2="root:memory"),
        spec,
        str(tmp_path),
    )
    clients = [Client(s) for s in socks]
    try:
        assert len(clients) == 2
        m = clients[0].mount()
        assert m.read_only
        assert clients[0].walk(m.root.node, [b"f"])[1] == 0
        assert not clients[1].mount().read_only
    finally:
        for c in clients:
            c.close()
    assert proc.wait(timeout=30) == 0
