"""Real programs that need sockets, under `runsc do`: Python's socketpair,
multiprocessing, a loopback TCP echo server and client in one process, an
HTTP server in a child process fetched with urllib, asyncio streams, and
the interface list the sandbox's netlink reports. Each prints what it saw;
the case passes if the sandbox prints what the host does (or, for the
interface list, what a `--network=none` sandbox must show)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")


def _runfile(path: str) -> str:
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "bazel-bin", path)


RUNSC = os.environ.get("E2E_RUNSC") or _runfile("runsc/runsc")
PYTHON = "/usr/bin/python3"

SOCKETPAIR = """
import socket
a, b = socket.socketpair()
a.sendall(b"over a pair")
print(b.recv(100).decode())
"""

POOL = """
from multiprocessing import Pool
with Pool(2) as p:
    print(sorted(p.map(abs, [-3, -1, -2])))
"""

TCP_ECHO = """
import socket, threading
srv = socket.create_server(("127.0.0.1", 0))
def serve():
    c, _ = srv.accept()
    with c:
        while data := c.recv(4096):
            c.sendall(data)
t = threading.Thread(target=serve)
t.start()
with socket.create_connection(srv.getsockname()) as c:
    c.sendall(b"echo " * 10000)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while data := c.recv(65536):
        got += data
t.join()
print(len(got), got[:10])
"""

HTTP = """
import subprocess, sys, urllib.request
p = subprocess.Popen(
    [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0",
     "-d", "/etc"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
port = int(p.stdout.readline().split(b"port ")[1].split()[0])
with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=30) as r:
    print(r.status, b"root:" in r.read())
p.terminate()
p.wait()
"""

ASYNCIO = """
import asyncio
async def main():
    async def handle(r, w):
        w.write((await r.readline()).upper())
        await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "::1", 0)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("::1", port)
    w.write(b"asyncio over ipv6\\n")
    print((await r.readline()).decode().strip())
    w.close()
    srv.close()
asyncio.run(main())
"""

CASES = [
    ("socketpair", SOCKETPAIR),
    ("multiprocessing_pool", POOL),
    ("tcp_echo", TCP_ECHO),
    ("http_server_and_urllib", HTTP),
    ("asyncio_ipv6", ASYNCIO),
]


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


@pytest.mark.parametrize(("name", "script"), CASES, ids=[c[0] for c in CASES])
def test_same_output_as_native(name: str, script: str) -> None:
    native = _run([PYTHON, "-c", script])
    sandboxed = _run([RUNSC, "do", PYTHON, "-c", script])
    assert sandboxed == native


def test_interfaces_are_loopback_only() -> None:
    script = "import socket; print(socket.if_nameindex())"
    assert _run([RUNSC, "do", PYTHON, "-c", script]).strip() == "[(1, 'lo')]"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
