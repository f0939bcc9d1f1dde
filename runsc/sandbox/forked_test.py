"""Tests of forked.fork_verb: the child looks like a freshly exec'd runsc."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess

import pytest

import runsc.main
from runsc.sandbox import forked


def _report(argv: list[str]) -> int:
    """Stands in for runsc.main.main in the child: writes what the child
    has to the descriptor named by argv[0]."""
    fd = int(argv[0])
    handlers = {}
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        h = signal.getsignal(sig)
        handlers[int(sig)] = h if isinstance(h, int) else "python"
    fds = []
    for x in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{x}")
        except FileNotFoundError:
            continue  # the listing's own descriptor, closed by now
        fds.append(int(x))
    facts = {
        "fds": sorted(fds),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "sid": os.getsid(0) == os.getpid(),
        "handlers": handlers,
        "root_handlers": len(logging.getLogger().handlers),
    }
    with open("/proc/self/environ", "rb") as f:
        facts["initial_env_zeroed"] = f.read().strip(b"\0") == b""
    os.write(fd, json.dumps(facts).encode())
    return 7


def test_child_has_only_what_it_is_given(monkeypatch, tmp_path):
    monkeypatch.setattr(runsc.main, "main", _report)
    # What an exec would not have passed on: a descriptor without
    # O_CLOEXEC, a log file, a Python signal handler.
    stray = os.open(tmp_path / "stray", os.O_CREAT | os.O_WRONLY, 0o600)
    os.set_inheritable(stray, True)
    handler = logging.FileHandler(tmp_path / "log")
    logging.getLogger().addHandler(handler)
    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    r, w = os.pipe()
    try:
        child = forked.fork_verb(
            [str(w)],
            stdio=(subprocess.DEVNULL, subprocess.DEVNULL, None),
            pass_fds=(w,),
            env={"PATH": "/bin"},
            cwd=str(tmp_path),
        )
    finally:
        signal.signal(signal.SIGUSR1, old)
        logging.getLogger().removeHandler(handler)
        handler.close()
        os.close(stray)
        os.close(w)
    assert child.wait(timeout=30) == 7
    assert child.poll() == 7
    with os.fdopen(r, "rb") as f:
        facts = json.loads(f.read())
    assert facts["fds"] == sorted({0, 1, 2, w})
    assert facts["env"] == {"PATH": "/bin"}
    assert facts["initial_env_zeroed"]
    assert facts["cwd"] == str(tmp_path)
    assert facts["sid"]
    assert facts["handlers"] == {
        str(int(signal.SIGTERM)): int(signal.SIG_DFL),
        str(int(signal.SIGUSR1)): int(signal.SIG_DFL),
    }
    assert facts["root_handlers"] == 0
    assert (tmp_path / "stray").exists()


def test_wait_timeout_and_kill():
    child = forked.fork_verb(
        ["--root=/nonexistent-runsc-test", "help"],
        stdio=(subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL),
        pass_fds=(),
        env={},
    )
    assert child.wait(timeout=30) is not None
    child.kill()  # reaped already: nothing to signal
    sleeper = forked.Forked(os.posix_spawn("/bin/sleep", ["sleep", "30"], {}))
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            sleeper.wait(timeout=0.05)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
    assert sleeper.wait() == -signal.SIGKILL
