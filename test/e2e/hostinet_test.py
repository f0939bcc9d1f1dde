"""Host networking (`runsc --network=host`, hostinet) against servers and
clients on the host's loopback.

An echo server (TCP and UDP, on 127.0.0.1 and ::1) runs natively as a
child of this test, which stops it by its pid; sandboxed programs reach
it only with --network=host. The other way round, servers inside the
sandbox are reached from this process. Only loopback addresses are ever
used.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from runsc.testutil.rootfs import make_busybox_rootfs, make_spec, write_bundle
from runsc.testutil.runsc import Runsc

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
BUSYBOX = "/usr/bin/busybox"
IP = "/usr/sbin/ip"
# Generous: the machine may be loaded by other test suites.
TIMEOUT = 120

# The native echo server: TCP on 127.0.0.1 and ::1 (one connection at a
# time: reads to EOF, answers "echo:" and the data), UDP on 127.0.0.1
# (answers each datagram to its sender). Prints its three ports.
ECHO_SERVER = r"""
import select, socket
t4 = socket.create_server(("127.0.0.1", 0))
t6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
print(t4.getsockname()[1], t6.getsockname()[1], u.getsockname()[1], flush=True)
while True:
    for s in select.select([t4, t6, u], [], [])[0]:
        if s is u:
            data, peer = u.recvfrom(65536)
            u.sendto(b"echo:" + data, peer)
            continue
        c, _ = s.accept()
        with c:
            c.settimeout(60)
            got = b""
            while d := c.recv(65536):
                got += d
            c.sendall(b"echo:" + got)
"""

TCP_CLIENT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    c = socket.create_connection((host, port), timeout=60)
except OSError as e:
    print("error", e.errno)
    sys.exit(0)
with c:
    c.sendall(b"x" * 100000)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while d := c.recv(65536):
        got += d
print(len(got), got[:7].decode())
"""

UDP_CLIENT = r"""
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(60)
u.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
data, peer = u.recvfrom(100)
print(data.decode(), peer[0], peer[1] == int(sys.argv[1]))
"""

ASYNCIO_CLIENT = r"""
import asyncio, sys
async def main():
    r, w = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
    w.write(b"from asyncio")
    w.write_eof()
    print((await asyncio.wait_for(r.read(), 60)).decode())
    w.close()
asyncio.run(main())
"""

# Servers run in the sandbox: each prints its port, serves one client and
# exits.
TCP_SERVER = r"""
import socket
s = socket.create_server(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
c, peer = s.accept()
with c:
    got = b""
    while d := c.recv(65536):
        got += d
    c.sendall(b"sandbox:" + got + b" from " + peer[0].encode())
"""

UDP_SERVER = r"""
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
print(u.getsockname()[1], flush=True)
data, peer = u.recvfrom(100)
u.sendto(b"sandbox:" + data, peer)
"""

IFCONF = r"""
import array, fcntl, socket, struct, sys
s = socket.socket(getattr(socket, sys.argv[1]), socket.SOCK_DGRAM)
buf = array.array("B", bytes(40 * 64))
n = struct.unpack("i", fcntl.ioctl(s.fileno(), 0x8912,
    struct.pack("iL", len(buf), buf.buffer_info()[0]))[:4])[0]
raw = buf.tobytes()[:n]
print(sorted(raw[i:i + 16].split(b"\0")[0].decode() for i in range(0, n, 40)))
"""


# Scripts whose output must be the same natively and in a --network=host
# sandbox: control messages both ways, and FIONREAD, peeking and TCP_INFO
# on a connection, all over the loopback.
CMSG_TTL = r"""
import socket, struct
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
w.sendmsg([b"ttl"], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 9))],
          0, r.getsockname())
r.settimeout(60)
data, anc, flags, _ = r.recvmsg(100, 100)
print(data, [(l, t, struct.unpack("i", d)[0]) for l, t, d in anc], flags)
try:
    w.sendmsg([b"x"], [(socket.IPPROTO_IP, 99, b"1234")], 0, r.getsockname())
except OSError as e:
    print("bad cmsg", e.errno)
"""

TCP_DETAILS = r"""
import fcntl, socket, struct, termios
l = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(l.getsockname(), timeout=60)
s, _ = l.accept()
c.sendall(b"0123456789")
s.settimeout(60)
print(s.recv(4, socket.MSG_PEEK | socket.MSG_WAITALL))
n = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]
print("fionread", n)
print(s.recv(100))
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
print("state", info[0])
print("nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
c.close()
print("eof", s.recv(10))
"""


# Blocking waits on host sockets are interruptible: a signal's handler runs
# during a blocking accept and a blocking recv.
INTERRUPTED = r"""
import signal, socket
class Alarm(Exception):
    pass
def on_alarm(signo, frame):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
l = socket.create_server(("127.0.0.1", 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
for name, call in (("accept", l.accept), ("recv", lambda: u.recv(10))):
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        call()
    except Alarm:
        print(name, "interrupted")
"""


@pytest.mark.parametrize(
    "script",
    [CMSG_TTL, TCP_DETAILS, INTERRUPTED],
    ids=["cmsg_ttl", "tcp_details", "interrupted"],
)
def test_same_output_as_native(script: str) -> None:
    native = _run([PYTHON, "-c", script])
    assert _sandboxed("host", PYTHON, "-c", script) == native


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


def _sandboxed(network: str, *argv: str) -> str:
    return _run([RUNSC, f"--network={network}", "do", *argv])


def _read_line(p: subprocess.Popen[bytes]) -> str:
    """Returns the first line p prints, failing after TIMEOUT."""
    assert p.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, "no output from the server"
        ready, _, _ = select.select([p.stdout], [], [], left)
        if ready:
            chunk = os.read(p.stdout.fileno(), 1)
            assert chunk, "the server exited before printing its port"
            line += chunk
    return line.decode()


def _stop(p: subprocess.Popen[bytes]) -> None:
    """Ends a child this test started, by its pid."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def echo_ports() -> Iterator[tuple[int, int, int]]:
    p = subprocess.Popen(
        [PYTHON, "-c", ECHO_SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        tcp4, tcp6, udp = (int(x) for x in _read_line(p).split())
        yield tcp4, tcp6, udp
    finally:
        _stop(p)


def test_tcp_client_reaches_host_server(echo_ports: tuple[int, int, int]) -> None:
    out = _sandboxed("host", PYTHON, "-c", TCP_CLIENT, "127.0.0.1", str(echo_ports[0]))
    assert out.split() == ["100005", "echo:xx"]


def test_tcp_client_reaches_host_server_ipv6(echo_ports: tuple[int, int, int]) -> None:
    out = _sandboxed("host", PYTHON, "-c", TCP_CLIENT, "::1", str(echo_ports[1]))
    assert out.split() == ["100005", "echo:xx"]


def test_asyncio_client_reaches_host_server(echo_ports: tuple[int, int, int]) -> None:
    out = _sandboxed("host", PYTHON, "-c", ASYNCIO_CLIENT, str(echo_ports[0]))
    assert out.strip() == "echo:from asyncio"


def test_udp_client_reaches_host_server(echo_ports: tuple[int, int, int]) -> None:
    out = _sandboxed("host", PYTHON, "-c", UDP_CLIENT, str(echo_ports[2]))
    assert out.split() == ["echo:ping", "127.0.0.1", "True"]


@pytest.mark.parametrize("network", ["none", "sandbox"])
def test_host_server_unreachable_without_host_network(
    echo_ports: tuple[int, int, int], network: str
) -> None:
    # The sandbox's own loopback has nothing on the host server's port.
    out = _sandboxed(network, PYTHON, "-c", TCP_CLIENT, "127.0.0.1", str(echo_ports[0]))
    assert out.split() == ["error", str(111)]  # ECONNREFUSED


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="no busybox")
def test_busybox_wget_fetches_from_host_http_server(http_port: int) -> None:
    url = f"http://127.0.0.1:{http_port}/hello.txt"
    out = _sandboxed("host", BUSYBOX, "wget", "-q", "-O", "-", url)
    assert out == "served by the host\n"


@pytest.fixture
def http_port(tmp_path: object) -> Iterator[int]:
    """Serves a directory holding hello.txt over HTTP on the host's
    127.0.0.1, from a child stopped by its pid."""
    d = str(tmp_path)
    with open(os.path.join(d, "hello.txt"), "w") as f:
        f.write("served by the host\n")
    p = subprocess.Popen(
        [PYTHON, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "-d", d],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield int(_read_line(p).split("port ")[1].split()[0])
    finally:
        _stop(p)


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="no busybox")
@pytest.mark.parametrize(("network", "fetched"), [("host", True), ("none", False)])
def test_oci_run_with_host_network(http_port: int, network: str, fetched: bool) -> None:
    # The OCI path (runsc run with a bundle whose spec asks for a network
    # namespace), which --network=host overrides as gVisor does.
    tmp = tempfile.mkdtemp(prefix="hostinet-", dir="/tmp")
    try:
        make_busybox_rootfs(os.path.join(tmp, "bundle", "rootfs"))
        # busybox nc, not wget: Debian's static busybox wget crashes in a
        # root without NSS files, natively too.
        request = r"GET /hello.txt HTTP/1.0\r\n\r\n"
        script = f'printf "{request}" | nc 127.0.0.1 {http_port}'
        bundle = write_bundle(
            os.path.join(tmp, "bundle"), make_spec(["sh", "-c", script])
        )
        runsc = Runsc(os.path.join(tmp, "root"), flags=[f"--network={network}"])
        p = runsc.run("run", "--bundle", bundle, "c", check=False)
        runsc.run("delete", "--force", "c", check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fetched:
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("HTTP/1.0 200 OK")
        # (Runsc.run reads text, which turns CRLF into LF.)
        assert p.stdout.endswith("\n\nserved by the host\n")
    else:
        assert p.returncode != 0
        assert "Connection refused" in p.stderr


def _serve_in_sandbox(script: str) -> tuple[subprocess.Popen[bytes], int]:
    p = subprocess.Popen(
        [RUNSC, "--network=host", "do", PYTHON, "-u", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        return p, int(_read_line(p))
    except BaseException:
        _stop(p)
        raise


def _finish(p: subprocess.Popen[bytes]) -> None:
    try:
        _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err.decode(errors="replace")
    finally:
        _stop(p)


def test_host_client_reaches_tcp_server_in_sandbox() -> None:
    p, port = _serve_in_sandbox(TCP_SERVER)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
            c.sendall(b"hi")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while d := c.recv(4096):
                got += d
    finally:
        _finish(p)
    assert got == b"sandbox:hi from 127.0.0.1"


def test_host_client_reaches_udp_server_in_sandbox() -> None:
    p, port = _serve_in_sandbox(UDP_SERVER)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(60)
            u.sendto(b"ping", ("127.0.0.1", port))
            data, peer = u.recvfrom(100)
    finally:
        _finish(p)
    assert (data, peer) == (b"sandbox:ping", ("127.0.0.1", port))


@pytest.mark.parametrize("family", ["AF_INET", "AF_UNIX"])
def test_interface_ioctl_lists_host_interfaces(family: str) -> None:
    # SIOCGIFCONF on a host socket, and on one of the sentry's own.
    native = _run([PYTHON, "-c", IFCONF, family])
    assert _sandboxed("host", PYTHON, "-c", IFCONF, family) == native
    assert _sandboxed("none", PYTHON, "-c", IFCONF, family).strip() == "['lo']"


def test_netlink_lists_host_interfaces() -> None:
    # glibc's if_nameindex dumps RTM_GETLINK over netlink.
    script = "import socket; print(socket.if_nameindex())"
    native = _run([PYTHON, "-c", script])
    assert _sandboxed("host", PYTHON, "-c", script) == native
    assert _sandboxed("none", PYTHON, "-c", script).strip() == "[(1, 'lo')]"


@pytest.mark.skipif(not os.path.exists(IP), reason="no iproute2")
@pytest.mark.parametrize("what", ["addr", "route", "-6 route"])
def test_iproute2_shows_the_host_network(what: str) -> None:
    argv = [IP, *what.split()]
    assert _sandboxed("host", *argv) == _run(argv)


def test_raw_sockets_are_refused() -> None:
    script = (
        "import socket\n"
        "try:\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
    )
    assert _sandboxed("host", PYTHON, "-c", script).strip() == "1"  # EPERM


def test_unknown_network_is_a_clear_error() -> None:
    r = subprocess.run(
        [RUNSC, "--network=bogus", "do", "/bin/true"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert r.returncode != 0
    assert b"--network" in r.stderr and b"invalid choice" in r.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
