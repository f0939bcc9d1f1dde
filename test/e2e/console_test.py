"""Terminals of containers behave as under runc: a process whose spec asks
for a terminal has /dev/pts/N of the container as its controlling terminal,
which echoes, edits lines, turns ^C into SIGINT, follows the size the client
sets on its end, and hangs up when the client closes it.

Each case drives the OCI verbs with --console-socket, as conmon and
containerd's shim do, and reads the client's end; where runc is installed
the same bundle runs under runc too and must give the same output. The
test process is a child subreaper, so that containers' host processes
(runc's init, runsc's sandbox, exec proxies) become its children.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import json
import os
import pty
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from runsc.testutil import procs
from runsc.testutil.rootfs import make_busybox_rootfs
from runsc.testutil.runsc import Runsc

PR_SET_CHILD_SUBREAPER = 36
RUNC = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
# Generous: the machine may be loaded.
TIMEOUT = 60.0


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="rsc-console-", dir="/tmp")
    make_busybox_rootfs(os.path.join(d, "rootfs"))
    yield os.path.join(d, "rootfs")
    shutil.rmtree(d, ignore_errors=True)


def _spec(rootfs: str, args: list[str]) -> dict:
    """The spec `runc spec` writes (a terminal, /dev/pts mounted), running
    args in rootfs."""
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": "/",
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "console",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
        ],
        "linux": {
            "namespaces": [
                {"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
            ]
        },
    }


class ConsoleSocket:
    """A console socket that keeps the first terminal sent to it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.fds: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, _ = self.srv.accept()
        _, anc, _, _ = conn.recvmsg(256, socket.CMSG_SPACE(4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.fds.extend(array.array("i", data))
        conn.close()

    def master(self) -> Master:
        assert procs.wait_until(lambda: self.fds, TIMEOUT), "no terminal sent"
        self.srv.close()
        return Master(self.fds[0])


class Master:
    """The client's end of a container's terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.out = b""
        self.closed = False
        # Writes to a pty whose other end has gone block once its buffer is
        # full.
        os.set_blocking(fd, False)

    def set_size(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes) -> None:
        """Writes data, unless the process has gone (then it is lost)."""
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def _read(self, timeout: float) -> bool:
        """Reads what there is; False once the other side is gone."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.out += chunk
        return bool(chunk)

    def expect(self, text: bytes) -> None:
        """Reads until text has come."""
        deadline = time.monotonic() + TIMEOUT
        while text not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.out!r}"
            assert self._read(min(left, 1.0)), f"no {text!r} in {self.out!r}"

    def read_to_end(self) -> bytes:
        """Reads until the terminal hangs up (the process has gone)."""
        deadline = time.monotonic() + TIMEOUT
        while self._read(1.0):
            assert time.monotonic() < deadline, f"no end after {self.out!r}"
        return self.out

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
            self.closed = True


class Runtime:
    """One OCI runtime (runsc or runc) with a state root of its own."""

    def __init__(self, name: str, tmp: str) -> None:
        self.name = name
        self.tmp = tmp
        root = os.path.join(tmp, "state")
        if name == "runsc":
            self.runsc: Runsc | None = Runsc(root, log_dir=os.path.join(tmp, "logs"))
            self.base = self.runsc.argv()
        else:
            self.runsc = None
            assert RUNC is not None
            self.base = [RUNC, "--root", root]
        self.children: list[int] = []
        self.cids: list[str] = []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [*self.base, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert p.returncode == 0, f"{self.name} {args}: {p.stdout}{p.stderr}"
        return p

    def create(self, cid: str, spec: dict) -> tuple[int, Master]:
        """Creates a container with a console socket; returns the pid to
        wait for and the terminal."""
        bundle = os.path.join(self.tmp, cid)
        os.makedirs(bundle)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        sock = ConsoleSocket(os.path.join(self.tmp, f"{cid}.sock"))
        pid_file = os.path.join(self.tmp, f"{cid}.pid")
        self.run(
            "create",
            "--bundle",
            bundle,
            "--console-socket",
            sock.path,
            "--pid-file",
            pid_file,
            cid,
        )
        self.cids.append(cid)
        return self._pid(pid_file), sock.master()

    def exec_tty(self, cid: str, args: list[str]) -> tuple[int, Master]:
        """Starts a process with a terminal in a running container, as
        containerd's shim does; returns the pid to wait for and the
        terminal."""
        n = len(self.children)
        sock = ConsoleSocket(os.path.join(self.tmp, f"exec{n}.sock"))
        pid_file = os.path.join(self.tmp, f"exec{n}.pid")
        self.run(
            "exec",
            "--tty",
            "--detach",
            "--console-socket",
            sock.path,
            "--pid-file",
            pid_file,
            cid,
            *args,
        )
        return self._pid(pid_file), sock.master()

    def _pid(self, pid_file: str) -> int:
        with open(pid_file) as f:
            pid = int(f.read())
        self.children.append(pid)
        return pid

    def reap(self, pid: int) -> int:
        """Waits for a child; returns its exit code, a death by signal as
        128 + the signal (as runsc's processes report it)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                self.children.remove(pid)
                code = os.waitstatus_to_exitcode(status)
                return 128 - code if code < 0 else code
            assert time.monotonic() < deadline, f"{self.name}: {pid} did not exit"
            time.sleep(0.02)

    def cleanup(self) -> None:
        for cid in self.cids:
            self.run("delete", "--force", cid, check=False)
        for pid in list(self.children):
            if procs.alive(pid):
                os.kill(pid, 9)
            self.reap(pid)


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    """runsc, then runc where it is installed."""
    tmp = tempfile.mkdtemp(prefix="rsc-console-", dir="/tmp")
    names = ["runsc"] + (["runc"] if RUNC else [])
    rts = [Runtime(n, os.path.join(tmp, n)) for n in names]
    for rt in rts:
        os.makedirs(rt.tmp)
    try:
        yield rts
    finally:
        for rt in rts:
            rt.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _same(results: dict[str, object]) -> object:
    """Returns runsc's result, once checked equal to runc's."""
    got = results["runsc"]
    for name, other in results.items():
        assert other == got, f"{name}: {other!r}, runsc: {got!r}"
    return got


def test_the_terminal_is_dev_pts_0_of_the_size_the_client_set(
    runtimes: list[Runtime], rootfs: str
) -> None:
    script = "tty; stty size; ls -l /proc/self/fd/0 | sed 's/.*-> //'; exit 3"
    results = {}
    for rt in runtimes:
        pid, master = rt.create("c", _spec(rootfs, ["sh", "-c", script]))
        master.set_size(25, 90)
        rt.run("start", "c")
        out = master.read_to_end()
        master.close()
        results[rt.name] = (rt.reap(pid), out)
    assert _same(results) == (3, b"/dev/pts/0\r\n25 90\r\n/dev/pts/0\r\n")


def test_echo_lines_and_end_of_file(runtimes: list[Runtime], rootfs: str) -> None:
    script = "echo ready; head -n 1; echo done; cat; echo eof"
    results = {}
    for rt in runtimes:
        pid, master = rt.create("c", _spec(rootfs, ["sh", "-c", script]))
        rt.run("start", "c")
        master.expect(b"ready\r\n")
        master.send(b"hello\n")
        master.expect(b"done\r\n")
        # Line editing: the erased character never reaches cat.
        master.send(b"abx\x7fc\n")
        master.expect(b"\r\nabc\r\n")
        master.send(b"\x04")
        out = master.read_to_end()
        master.close()
        results[rt.name] = (rt.reap(pid), out)
    code, out = _same(results)  # type: ignore[misc]
    assert code == 0
    assert out.startswith(b"ready\r\nhello\r\nhello\r\ndone\r\n"), out
    assert out.endswith(b"c\r\nabc\r\neof\r\n"), out


def test_interrupt_ends_the_foreground_command(
    runtimes: list[Runtime], rootfs: str
) -> None:
    # sh is init, which ignores SIGINT; the command, in the same
    # (foreground) process group, dies of it, whether it is still the
    # inner shell or sleep already.
    script = "sh -c 'echo ready; exec sleep 1000'; echo after=$?"
    results = {}
    for rt in runtimes:
        pid, master = rt.create("c", _spec(rootfs, ["sh", "-c", script]))
        rt.run("start", "c")
        master.expect(b"ready\r\n")
        # Sent again until the command has gone: the shell that runs it is
        # init, which drops SIGINT.
        deadline = time.monotonic() + TIMEOUT
        while b"after=" not in master.out and master._read(0.5):
            assert time.monotonic() < deadline, (rt.name, master.out[-200:])
            master.send(b"\x03")
        out = master.read_to_end()
        master.close()
        # ^C is echoed as such. busybox's sh then ends as if interrupted
        # itself: 130, without running the rest of its script.
        results[rt.name] = (rt.reap(pid), out.startswith(b"ready\r\n^C"))
    assert _same(results) == (130, True)


def test_size_changes_and_hang_up(runtimes: list[Runtime], rootfs: str) -> None:
    script = (
        "trap 'stty size' WINCH; trap 'exit 7' HUP; echo ready; "
        "while :; do sleep 0.1; done"
    )
    results = {}
    for rt in runtimes:
        pid, master = rt.create("c", _spec(rootfs, ["sh", "-c", script]))
        master.set_size(30, 100)
        rt.run("start", "c")
        master.expect(b"ready\r\n")
        master.set_size(40, 120)
        master.expect(b"40 120\r\n")
        # The client goes: the container's terminal hangs up, and its
        # session leader gets SIGHUP.
        master.close()
        results[rt.name] = rt.reap(pid)
    assert _same(results) == 7


def test_exec_gets_a_terminal_of_its_own(runtimes: list[Runtime], rootfs: str) -> None:
    script = (
        "tty; stty size; trap 'stty size' WINCH; echo ready; "
        "while :; do sleep 0.1; done"
    )
    results = {}
    for rt in runtimes:
        init, init_master = rt.create("c", _spec(rootfs, ["sleep", "1000"]))
        rt.run("start", "c")
        pid, master = rt.exec_tty("c", ["sh", "-c", script])
        master.expect(b"ready\r\n")
        # Its size follows the client's (the sandbox looks at it
        # periodically: exec'd terminals tell nobody of a change).
        master.set_size(33, 77)
        master.expect(b"33 77\r\n")
        # A hang-up kills the shell (no handler).
        master.close()
        code = rt.reap(pid)
        results[rt.name] = (code, master.out.split(b"\r\n")[0])
        rt.run("kill", "c", "KILL")
        rt.reap(init)
        init_master.close()
    assert _same(results) == (128 + 1, b"/dev/pts/1")


def _on_a_pty(argv: list[str], rows: int = 24, cols: int = 80) -> tuple[int, bytes]:
    """Runs argv on a new host pty of the given size (as a user's terminal);
    returns its exit code and what it wrote."""
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execv(argv[0], argv)
    m = Master(fd)
    m.read_to_end()
    m.close()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), m.out


def test_foreground_run_relays_its_own_terminal(
    runtimes: list[Runtime], rootfs: str
) -> None:
    # As runc in the foreground: the container's terminal has -onlcr, the
    # user's terminal does the CR NL (and a file gets plain newlines).
    script = "tty; stty size; stty -a | grep -o ' .onlcr'; exit 4"
    results = {}
    for rt in runtimes:
        bundle = os.path.join(rt.tmp, "fg")
        os.makedirs(bundle)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(_spec(rootfs, ["sh", "-c", script]), f)
        argv = [*rt.base, "run", "--bundle", bundle, "fg"]
        code, out = _on_a_pty(argv, 21, 61)
        out = out.replace(b"\0", b"")
        if rt.name == "runsc":
            assert out == b"/dev/pts/0\r\n21 61\r\n -onlcr\r\n", out
        # runc sets its terminal up (size, ONLCR) while the process may run
        # already: only the name is compared.
        results[rt.name] = (code, out.split(b"\r")[0])
    assert _same(results) == (4, b"/dev/pts/0")


def test_foreground_exec_gets_the_next_terminal(
    runtimes: list[Runtime], rootfs: str
) -> None:
    results = {}
    for rt in runtimes:
        init, master = rt.create("c", _spec(rootfs, ["sleep", "1000"]))
        rt.run("start", "c")
        argv = [*rt.base, "exec", "-t", "c", "sh", "-c", "tty; stty size; exit 5"]
        code, out = _on_a_pty(argv, 22, 62)
        if rt.name == "runsc":
            assert out == b"/dev/pts/1\r\n22 62\r\n", out
        # runc sizes its terminal and clears its ONLCR while the process may
        # run already: only the name is compared.
        results[rt.name] = (code, out.split(b"\r")[0])
        rt.run("kill", "c", "KILL")
        rt.reap(init)
        master.close()
    assert _same(results) == (5, b"/dev/pts/1")


def test_the_terminal_belongs_to_the_user(runtimes: list[Runtime], rootfs: str) -> None:
    # runc gives the process's user its standard descriptors' terminal; the
    # group stays devpts's (gid=5).
    results = {}
    for rt in runtimes:
        spec = _spec(rootfs, ["sh", "-c", "stat -c '%u %g %a' /dev/pts/0"])
        spec["process"]["user"] = {"uid": 1000, "gid": 1000}
        pid, master = rt.create("c", spec)
        rt.run("start", "c")
        out = master.read_to_end()
        master.close()
        results[rt.name] = (rt.reap(pid), out)
    assert _same(results) == (0, b"1000 5 620\r\n")
