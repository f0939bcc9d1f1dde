"""Container daemons for end-to-end tests: containerd and dockerd, each
started on private state and sockets and stopped by its pid.

A daemon that is not installed, or does not come up, makes the test skip
with the reason; tools/setup.sh installs them, so in CI they run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from runsc.testutil import procs

# How long a daemon may take to start and to stop.
START_SECONDS = 60.0
STOP_SECONDS = 30.0


class Daemon:
    """Daemon is a started daemon process.

    Args:
        name: for messages.
        argv: its command line.
        ready: the path of the socket that appears once it serves.
        log: where its output goes.
    """

    def __init__(self, name: str, argv: list[str], ready: str, log: str) -> None:
        self.name = name
        self.log = log
        self.ready = ready
        if shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed (tools/setup.sh installs it)")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if not procs.wait_until(
            lambda: os.path.exists(ready) or self.proc.poll() is not None,
            START_SECONDS,
        ) or not os.path.exists(ready):
            tail = self.log_tail()
            self.stop()
            pytest.skip(f"{name} did not start: {tail}")

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        """Returns the end of the daemon's log."""
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stops the daemon by its pid: SIGTERM, then SIGKILL if it lingers.
        Its own children (containerd's shims, say) are the daemon's to stop;
        what remains of its process group is killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def containerd(workdir: str) -> Daemon:
    """Starts containerd with its root, state and sockets in workdir and the
    CRI plugin off."""
    sock = os.path.join(workdir, "containerd.sock")
    config = os.path.join(workdir, "containerd.toml")
    with open(config, "w") as f:
        f.write(
            "version = 2\n"
            f'root = "{workdir}/root"\n'
            f'state = "{workdir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{sock}"\n'
            "[ttrpc]\n"
            f'  address = "{sock}.ttrpc"\n'
            "[debug]\n"
            f'  address = "{workdir}/debug.sock"\n'
        )
    return Daemon(
        "containerd",
        ["containerd", "--config", config],
        sock,
        os.path.join(workdir, "containerd.log"),
    )


def dockerd(workdir: str, runtimes: dict[str, dict[str, object]]) -> Daemon:
    """Starts dockerd with its data, exec root, pid file and socket in
    workdir, no bridge, no iptables, and the given runtimes."""
    sock = os.path.join(workdir, "docker.sock")
    config = os.path.join(workdir, "daemon.json")
    with open(config, "w") as f:
        json.dump(
            {
                "data-root": os.path.join(workdir, "data"),
                "exec-root": os.path.join(workdir, "exec"),
                "pidfile": os.path.join(workdir, "docker.pid"),
                "hosts": [f"unix://{sock}"],
                "bridge": "none",
                "iptables": False,
                "ip6tables": False,
                "ip-forward": False,
                "ip-masq": False,
                "runtimes": runtimes,
            },
            f,
        )
    return Daemon(
        "dockerd",
        ["dockerd", "--config-file", config],
        sock,
        os.path.join(workdir, "dockerd.log"),
    )


def wait_gone(pid: int, timeout: float = STOP_SECONDS) -> bool:
    """Waits until a process that is not our child has exited."""
    deadline = time.monotonic() + timeout
    while procs.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
