"""Process checks for end-to-end tests: which processes a sandbox left, by
the PID namespace it runs in."""

from __future__ import annotations

import os
import time


def pid_namespace(pid: int) -> str:
    """Returns the PID namespace of a process (pid:[N]), or "" if gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Reports whether pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3] not in (b"Z", b"X")


def processes_in(namespace: str) -> list[int]:
    """Returns the live processes in a PID namespace."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and pid_namespace(int(name)) == namespace:
            if alive(int(name)):
                out.append(int(name))
    return out


def wait_until(cond: object, timeout: float = 10.0) -> bool:
    """Polls cond() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():  # type: ignore[operator]
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def status_field(pid: int, name: str) -> str:
    """Returns a field of /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
    raise KeyError(name)


def describe(pid: int) -> str:
    """Returns a one-line description of a process, for failure messages."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        name, ppid = status_field(pid, "Name"), status_field(pid, "PPid")
        return f"{pid} [{name}] ppid={ppid} {cmd}"
    except (OSError, KeyError):
        return f"{pid} (gone)"


def leftovers(namespaces: set[str] | dict[str, int], grace: float = 10.0) -> list[str]:
    """Returns descriptions of processes still alive in any of the PID
    namespaces after waiting up to grace seconds for them to go (a daemon
    may finish tearing a sandbox down after its client returned).

    namespaces may map each namespace to the pid of its init (the sandbox
    process): the kernel reuses a freed namespace's inode number, so once
    that init is gone (which kills everything in its namespace) processes
    under the same name belong to somebody else's sandbox."""

    def ours(ns: str) -> bool:
        if not isinstance(namespaces, dict):
            return True
        return alive(namespaces[ns]) and pid_namespace(namespaces[ns]) == ns

    def alive_in() -> list[int]:
        return [pid for ns in namespaces if ours(ns) for pid in processes_in(ns)]

    wait_until(lambda: not alive_in(), grace)
    return [describe(pid) for pid in alive_in()]


def with_argument(text: str) -> list[int]:
    """Returns the pids of processes whose command line has an argument
    containing text (a test's private directory names its runsc processes:
    sandboxes and gofers)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(text.encode() in a for a in args) and alive(int(name)):
            out.append(int(name))
    return out


def leftover_runsc(text: str, grace: float = 10.0) -> list[str]:
    """Describes processes (with_argument(text)) still alive after waiting up
    to grace seconds for them to go."""
    me = os.getpid()

    def alive_now() -> list[int]:
        return [p for p in with_argument(text) if p != me]

    wait_until(lambda: not alive_now(), grace)
    return [describe(pid) for pid in alive_now()]
