"""The control server: the sandbox's end of runsc's control socket.

runsc talks to a running sandbox through a Unix socket that the command line
created and handed to the sandbox already listening. Each connection carries
one control.proto Request and gets one Response; a request may block (a
wait, say) without holding up others, since every connection is served on its
own thread.

The server knows nothing about containers: it decodes requests and calls the
method of its handler named after the request (`start`, `exec`, ...), which
returns the matching response message or raises ControlError.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

from google.protobuf.message import DecodeError

from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.errors import ControlError
from pkg.unet import unet

__all__ = ["ControlError", "Server"]

log = logging.getLogger(__name__)


class Server:
    """Server accepts control connections on a listening socket.

    Args:
        listener: a listening Unix stream socket; the server owns it.
        handler: the object whose methods carry out requests.
    """

    def __init__(self, listener: socket.socket, handler: object) -> None:
        self._listener = listener
        self._handler = handler
        self._thread: threading.Thread | None = None
        self._closed = False
        # Connections being served, so that the sandbox can let the answer
        # to a wait reach its client before the process exits.
        self._active = 0
        self._idle = threading.Condition()

    def start(self) -> None:
        """Starts accepting connections on a daemon thread."""
        self._thread = threading.Thread(
            target=self._accept_loop, name="control-accept", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stops accepting connections. Requests in progress finish."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no connection is being served; returns False on
        timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError as e:
                if not self._closed:
                    log.warning("control: accept: %s", e)
                return
            with self._idle:
                self._active += 1
            threading.Thread(
                target=self._serve, args=(unet.Conn(sock),), daemon=True
            ).start()

    def _serve(self, conn: unet.Conn) -> None:
        try:
            self._serve_one(conn)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _serve_one(self, conn: unet.Conn) -> None:
        with conn:
            try:
                payload, fds = conn.recv()
            except (OSError, EOFError) as e:
                log.debug("control: receiving request: %s", e)
                return
            resp = self.handle(payload, fds)
            try:
                conn.send(resp.SerializeToString())
            except OSError as e:
                log.debug("control: sending response: %s", e)

    def handle(self, payload: bytes, fds: list[int]) -> pb.Response:
        """Decodes one request, carries it out, and returns the response."""
        resp = pb.Response()
        req = pb.Request()
        try:
            req.ParseFromString(payload)
        except DecodeError:
            _close_all(fds)
            resp.error = "malformed control request"
            return resp
        kind = req.WhichOneof("request")
        method = getattr(self._handler, kind, None) if kind else None
        if method is None:
            _close_all(fds)
            resp.error = f"unsupported control request {kind!r}"
            return resp
        log.debug("control: request %s", kind)
        try:
            result = method(getattr(req, kind), fds)
        except ControlError as e:
            resp.error = str(e)
            resp.errno = e.errno
            return resp
        except Exception as e:
            log.exception("control: request %s failed", kind)
            resp.error = f"{kind}: internal error: {e}"
            return resp
        getattr(resp, kind).CopyFrom(result)
        return resp


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
