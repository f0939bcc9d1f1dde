"""An interactive shell under `runsc do` on a terminal has job control: its
controlling terminal is /dev/pts/0 of the sandbox, relayed to the host
terminal, ^C reaches the foreground job only, and background jobs are
listed and killed."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")


def runfile(path: str) -> str:
    """Returns the absolute path of a runfiles path (or of the built file,
    when run from the worktree)."""
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "bazel-bin", path)


RUNSC = os.environ.get("E2E_RUNSC") or runfile("runsc/runsc")
BASH = shutil.which("bash", path="/usr/bin:/bin")


class Terminal:
    """A shell under runsc on a pseudo-terminal of the host."""

    def __init__(self, root: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:
            env = {"PATH": "/usr/bin:/bin", "PS1": "PROMPT> ", "TERM": "dumb"}
            argv = [RUNSC, f"--root={root}", "do", BASH, "--norc", "--noprofile", "-i"]
            os.execve(RUNSC, argv, env)
        self.pid, self.fd = pid, fd
        self.out = b""

    def expect(self, text: bytes, timeout: float = 60.0) -> bytes:
        """Reads until text appears; returns what came before it."""
        deadline = time.monotonic() + timeout
        while text not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.out!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    break
        before, _, self.out = self.out.partition(text)
        return before

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return status


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_job_control_on_the_host_terminal(tmp_path):
    term = Terminal(str(tmp_path))
    banner = term.expect(b"PROMPT> ")
    assert b"no job control" not in banner
    # Its terminal is the sandbox's, as runc's would be the container's.
    term.send(b"tty\n")
    assert b"/dev/pts/0" in term.expect(b"PROMPT> ")
    term.send(b"sleep 100\n")
    time.sleep(1)
    term.send(b"\x03")
    term.expect(b"PROMPT> ")
    term.send(b"echo status=$?\n")
    term.expect(b"status=130")
    term.expect(b"PROMPT> ")
    term.send(b"sleep 50 &\n")
    term.expect(b"PROMPT> ")
    term.send(b"jobs\n")
    assert b"Running" in term.expect(b"PROMPT> ")
    term.send(b"kill %1; wait; exit 7\n")
    status = term.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, status
