"""Tests for the control server: dispatch, errors, descriptors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.server import ControlError, Server
from pkg.unet import unet


class FakeHandler:
    """FakeHandler answers a few requests and records descriptors."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def state(self, req: pb.StateRequest, fds: list[int]) -> pb.StateResponse:
        return pb.StateResponse(status="running")

    def exec(self, req: pb.ExecRequest, fds: list[int]) -> pb.ExecResponse:
        self.fds += fds
        return pb.ExecResponse(pid=len(req.process.argv))

    def pause(self, req: pb.PauseRequest, fds: list[int]) -> pb.PauseResponse:
        raise ControlError("cannot pause", 22)

    def resume(self, req: pb.ResumeRequest, fds: list[int]) -> pb.ResumeResponse:
        raise RuntimeError("boom")


def test_dispatches_by_request_kind() -> None:
    s = Server(socket.socket(socket.AF_UNIX), FakeHandler())
    resp = s.handle(pb.Request(state=pb.StateRequest()).SerializeToString(), [])
    assert resp.error == ""
    assert resp.state.status == "running"


def test_control_error_becomes_error_and_errno() -> None:
    s = Server(socket.socket(socket.AF_UNIX), FakeHandler())
    resp = s.handle(pb.Request(pause=pb.PauseRequest()).SerializeToString(), [])
    assert resp.error == "cannot pause"
    assert resp.errno == 22


def test_unexpected_exception_is_an_internal_error() -> None:
    s = Server(socket.socket(socket.AF_UNIX), FakeHandler())
    resp = s.handle(pb.Request(resume=pb.ResumeRequest()).SerializeToString(), [])
    assert "internal error" in resp.error


def test_unsupported_request_closes_descriptors() -> None:
    s = Server(socket.socket(socket.AF_UNIX), FakeHandler())
    r, w = os.pipe()
    resp = s.handle(pb.Request(ps=pb.PsRequest()).SerializeToString(), [w])
    assert "unsupported" in resp.error
    assert os.read(r, 1) == b""  # the write end was closed
    os.close(r)


def test_malformed_request() -> None:
    s = Server(socket.socket(socket.AF_UNIX), FakeHandler())
    assert "malformed" in s.handle(b"\xff\xff\xff", []).error


def test_serves_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    handler = FakeHandler()
    server = Server(unet.listen(path), handler)
    server.start()
    r, w = os.pipe()
    try:
        req = pb.Request(exec=pb.ExecRequest(process=pb.Process(argv=["a", "b"])))
        with unet.connect(path, timeout=5) as conn:
            conn.send(req.SerializeToString(), [r, w])
            payload, _ = conn.recv()
        resp = pb.Response()
        resp.ParseFromString(payload)
        assert resp.exec.pid == 2
        assert len(handler.fds) == 2
        assert server.wait_idle(5)
    finally:
        server.close()
        for fd in (r, w, *handler.fds):
            os.close(fd)
