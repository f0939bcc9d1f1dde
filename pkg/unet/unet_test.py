"""Tests for pkg/unet: frames, descriptors, long socket paths."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from pkg.unet import unet


def test_frames_round_trip() -> None:
    a, b = unet.socketpair()
    big = b"x" * 300000

    def send() -> None:
        a.send(b"hello")
        a.send(b"")
        # Larger than the socket buffer: sent while the reader reads.
        a.send(big)

    with a, b:
        t = threading.Thread(target=send)
        t.start()
        assert b.recv() == (b"hello", [])
        assert b.recv() == (b"", [])
        assert b.recv() == (big, [])
        t.join()


def test_descriptors_travel_with_their_frame() -> None:
    a, b = unet.socketpair()
    r, w = os.pipe()
    try:
        with a, b:
            a.send(b"first", [w])
            a.send(b"second")
            payload, fds = b.recv()
            assert payload == b"first"
            assert len(fds) == 1
            os.write(fds[0], b"via passed fd")
            os.close(fds[0])
            assert os.read(r, 100) == b"via passed fd"
            assert b.recv() == (b"second", [])
    finally:
        os.close(r)
        os.close(w)


def test_received_descriptors_are_close_on_exec() -> None:
    a, b = unet.socketpair()
    r, w = os.pipe()
    with a, b:
        a.send(b"", [r])
        _, fds = b.recv()
    assert not os.get_inheritable(fds[0])
    for fd in (r, w, *fds):
        os.close(fd)


def test_closed_peer() -> None:
    a, b = unet.socketpair()
    a.close()
    with b, pytest.raises(unet.ConnectionClosed):
        b.recv()


def test_truncated_frame_is_an_error() -> None:
    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    x.sendall(b"\x10\x00\x00\x00abc")
    x.close()
    with unet.Conn(y) as conn, pytest.raises(OSError):
        conn.recv()


def test_oversized_frame_is_refused() -> None:
    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    x.sendall((unet.MAX_FRAME + 1).to_bytes(4, "little"))
    with unet.Conn(y) as conn, pytest.raises(OSError):
        conn.recv()
    x.close()


def test_long_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "control.sock")
    assert len(path) > 108
    listener = unet.listen(path)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with unet.Conn(conn) as c:
            got.append(c.recv()[0])
            c.send(b"pong")

    t = threading.Thread(target=serve)
    t.start()
    with unet.connect(path, timeout=5) as c:
        c.send(b"ping")
        assert c.recv() == (b"pong", [])
    t.join()
    listener.close()
    assert got == [b"ping"]
